# The CUDA parts (kernels/ and the files that use LibTorch's CUDA API), after cmake/torch.cmake.
#   GRPO_CUDA=AUTO  built when nvcc is found and torch is a CUDA build of the same major version
#   GRPO_CUDA=ON    the same, but a configure error when they cannot be built
#   GRPO_CUDA=OFF   skipped
# Sets GRPO_CUDA_ENABLED; when ON, grpo_torch also links libtorch_cuda (so LibTorch's CUDA backend
# registers itself) and grpo_kernels defines GRPO_WITH_CUDA=1 for its users. The binary runs on a
# machine without a GPU either way: LibTorch then reports no CUDA device.
set(GRPO_CUDA AUTO CACHE STRING "Build the CUDA parts: AUTO, ON or OFF")
set_property(CACHE GRPO_CUDA PROPERTY STRINGS AUTO ON OFF)
set(GRPO_CUDA_ENABLED OFF)
set(cuda_skip "")
if(GRPO_CUDA STREQUAL "OFF")
  set(cuda_skip "GRPO_CUDA=OFF")
elseif(NOT GRPO_TORCH_CUDA)
  set(cuda_skip "torch ${GRPO_TORCH_VERSION} is a CPU-only build")
else()
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    # nvcc on PATH, else where the CUDA toolkit installs it (PATH often lacks it in CI shells).
    find_program(GRPO_NVCC nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH PATHS /usr/local/cuda PATH_SUFFIXES bin)
    if(GRPO_NVCC AND EXISTS "${GRPO_NVCC}")
      set(CMAKE_CUDA_COMPILER ${GRPO_NVCC})
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    set(cuda_skip "no nvcc found (put it on PATH or set CMAKE_CUDA_COMPILER)")
  endif()
endif()
if(NOT cuda_skip)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90a-real)  # A100 (+ PTX for later GPUs), H100/H200 (wgmma, FP8)
  endif()
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)  # the one libcudart that LibTorch loads
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  string(REGEX MATCH "^[0-9]+" nvcc_major "${CMAKE_CUDA_COMPILER_VERSION}")
  string(REGEX MATCH "^[0-9]+" torch_cuda_major "${GRPO_TORCH_CUDA}")
  if(NOT nvcc_major STREQUAL torch_cuda_major)
    set(cuda_skip "nvcc ${CMAKE_CUDA_COMPILER_VERSION} does not match torch's CUDA ${GRPO_TORCH_CUDA}")
  endif()
endif()
if(cuda_skip)
  if(GRPO_CUDA STREQUAL "ON")
    message(FATAL_ERROR "GRPO_CUDA=ON but the CUDA parts cannot be built: ${cuda_skip}")
  endif()
  message(STATUS "CUDA parts: skipped (${cuda_skip}); the CPU binary is built")
  set(GRPO_CUDA_ARCHS "")
  set(GRPO_CUDA_SKIP_REASON "${cuda_skip}")
else()
  set(GRPO_CUDA_ENABLED ON)
  set(GRPO_CUDA_ARCHS "${CMAKE_CUDA_ARCHITECTURES}")
  message(STATUS "CUDA parts: built with nvcc ${CMAKE_CUDA_COMPILER_VERSION} for ${GRPO_CUDA_ARCHS} "
                 "(torch CUDA ${GRPO_TORCH_CUDA})")
  # --no-as-needed: nothing references libtorch_cuda by name, it registers LibTorch's CUDA backend.
  target_link_libraries(grpo_torch INTERFACE "-Wl,--no-as-needed" ${GRPO_TORCH_DIR}/lib/libtorch_cuda.so
                        ${GRPO_TORCH_DIR}/lib/libc10_cuda.so "-Wl,--as-needed" CUDA::cudart)
endif()
