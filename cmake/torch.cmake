# LibTorch from a Python environment's torch package (the official PyPI wheel carries LibTorch's
# headers and libraries). Defines the interface target grpo_torch and GRPO_TORCH_VERSION,
# GRPO_TORCH_DIR, GRPO_TORCH_CUDA (the CUDA version torch was built with, "" for a CPU build).
#
#   GRPO_PYTHON        the interpreter whose torch to use; default: the project's environment
#                      (scripts/pyenv.sh, made by `make deps`), or python3 on PATH with
#                      GRPO_SYSTEM_TORCH.
#   GRPO_SYSTEM_TORCH  ON on a machine with its own PyTorch (a GPU machine): take python3's torch
#                      whatever its version instead of the pinned one.
#
# The CPU libraries (libtorch_cpu, libc10) are always linked; libtorch_cuda and libc10_cuda are
# added by cmake/cuda.cmake when the CUDA parts are built. Linking the libraries directly (rather
# than through TorchConfig.cmake) lets a machine without nvcc build the CPU binary from the same
# CUDA-enabled wheel: TorchConfig.cmake of a CUDA wheel requires the CUDA toolkit.
option(GRPO_SYSTEM_TORCH "Build against python3's own torch, any version (GPU machines)" OFF)
set(GRPO_PYTHON "" CACHE FILEPATH "Python interpreter whose torch package provides LibTorch")

file(STRINGS ${CMAKE_SOURCE_DIR}/python/requirements.txt torch_pin REGEX "^torch==")
string(REGEX REPLACE "^torch==([^ ]+).*" "\\1" GRPO_TORCH_PINNED "${torch_pin}")

if(NOT GRPO_PYTHON)
  if(GRPO_SYSTEM_TORCH)
    find_program(GRPO_PYTHON_FOUND python3 REQUIRED)
    set(GRPO_PYTHON ${GRPO_PYTHON_FOUND})
  else()
    execute_process(COMMAND ${CMAKE_SOURCE_DIR}/scripts/pyenv.sh --path OUTPUT_VARIABLE pyenv
                    OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
    if(NOT EXISTS ${pyenv}/.complete)
      message(FATAL_ERROR "LibTorch: the project's Python environment ${pyenv} is missing: run `make deps` "
                          "(or -DGRPO_SYSTEM_TORCH=ON to use python3's own torch)")
    endif()
    set(GRPO_PYTHON ${pyenv}/bin/python)
  endif()
endif()

execute_process(
  COMMAND ${GRPO_PYTHON} -c "import os, torch; print(torch.__version__); print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI)); print(torch.version.cuda or '')"
  OUTPUT_VARIABLE torch_info ERROR_VARIABLE torch_err RESULT_VARIABLE torch_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT torch_rc EQUAL 0)
  message(FATAL_ERROR "LibTorch: `${GRPO_PYTHON} -c 'import torch'` failed: ${torch_err}")
endif()
string(REPLACE "\n" ";" torch_info "${torch_info}")
list(GET torch_info 0 GRPO_TORCH_VERSION)
list(GET torch_info 1 GRPO_TORCH_DIR)
list(GET torch_info 2 torch_abi)
list(LENGTH torch_info n)
set(GRPO_TORCH_CUDA "")
if(n GREATER 3)
  list(GET torch_info 3 GRPO_TORCH_CUDA)
endif()
string(REGEX REPLACE "\\+.*" "" torch_release "${GRPO_TORCH_VERSION}")  # 2.11.0+cu130 -> 2.11.0
if(NOT torch_release STREQUAL GRPO_TORCH_PINNED)
  if(GRPO_SYSTEM_TORCH)
    message(WARNING "LibTorch: building against torch ${GRPO_TORCH_VERSION} (${GRPO_TORCH_DIR}), not the pinned "
                    "${GRPO_TORCH_PINNED} (GRPO_SYSTEM_TORCH=ON)")
  else()
    message(FATAL_ERROR "LibTorch: found torch ${GRPO_TORCH_VERSION} in ${GRPO_TORCH_DIR}, expected ${GRPO_TORCH_PINNED} "
                        "(python/requirements.txt); -DGRPO_SYSTEM_TORCH=ON builds against it knowingly")
  endif()
endif()
message(STATUS "LibTorch ${GRPO_TORCH_VERSION} from ${GRPO_TORCH_DIR} (CUDA ${GRPO_TORCH_CUDA})")

# The wheel's include/ also carries the headers of the protobuf LibTorch was built with; they must
# not shadow the system protobuf that gRPC and our .proto files use. So the include root is a folder
# of links to every entry of the wheel's include/ but google/.
set(torch_include ${CMAKE_BINARY_DIR}/torch_include)
file(REMOVE_RECURSE ${torch_include})
file(MAKE_DIRECTORY ${torch_include})
file(GLOB torch_include_entries RELATIVE ${GRPO_TORCH_DIR}/include ${GRPO_TORCH_DIR}/include/*)
foreach(entry ${torch_include_entries})
  if(NOT entry STREQUAL "google")
    file(CREATE_LINK ${GRPO_TORCH_DIR}/include/${entry} ${torch_include}/${entry} SYMBOLIC)
  endif()
endforeach()

add_library(grpo_torch INTERFACE)
target_include_directories(grpo_torch SYSTEM INTERFACE ${torch_include}
                           ${GRPO_TORCH_DIR}/include/torch/csrc/api/include)
target_compile_definitions(grpo_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=${torch_abi})
# Every torch user compiles with -pthread (gRPC adds it too) so the precompiled header matches.
target_compile_options(grpo_torch INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-pthread>)
target_link_libraries(grpo_torch INTERFACE ${GRPO_TORCH_DIR}/lib/libtorch_cpu.so ${GRPO_TORCH_DIR}/lib/libc10.so
                      Threads::Threads)
set(CMAKE_BUILD_RPATH ${CMAKE_BUILD_RPATH} ${GRPO_TORCH_DIR}/lib)

# LibTorch's at::parallel_for is an inline template: its `#pragma omp parallel` compiles into the
# caller, and without -fopenmp the whole range runs on the calling thread. The sources of ours that
# call it compile with -fopenmp (outside the precompiled header, which is built without it) and
# link the wheel's own libgomp, so the process has one OpenMP runtime and one thread pool.
function(grpo_openmp_sources target)
  set_source_files_properties(${ARGN} TARGET_DIRECTORY ${target} PROPERTIES COMPILE_OPTIONS -fopenmp
                              SKIP_PRECOMPILE_HEADERS ON)
  target_link_libraries(${target} PUBLIC ${GRPO_TORCH_DIR}/lib/libgomp.so.1)
endfunction()
