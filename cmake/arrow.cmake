# Apache Arrow's C++ library (Arrow + Parquet) from the pyarrow package of GRPO_PYTHON's
# environment (python/requirements-data.txt, installed by scripts/pyenv.sh): the PyPI wheel ships
# its headers and libarrow.so.N / libparquet.so.N. Linked by path with an rpath to that folder.
# Its headers need C++20, so only dataset/parquet/ is compiled as C++20.
#
# Defines the target grpo_arrow when pyarrow is there; without it the build goes on and reading a
# .parquet dataset is an error that says how to get it.
execute_process(
  COMMAND ${GRPO_PYTHON} -c "import pyarrow; print(pyarrow.__version__); print(pyarrow.get_include()); print(pyarrow.get_library_dirs()[0])"
  OUTPUT_VARIABLE arrow_info RESULT_VARIABLE arrow_rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
set(GRPO_ARROW_VERSION "")
if(arrow_rc EQUAL 0)
  string(REPLACE "\n" ";" arrow_info "${arrow_info}")
  list(GET arrow_info 0 GRPO_ARROW_VERSION)
  list(GET arrow_info 1 arrow_include)
  list(GET arrow_info 2 arrow_libdir)
  file(GLOB arrow_lib ${arrow_libdir}/libarrow.so.[0-9]*)
  file(GLOB parquet_lib ${arrow_libdir}/libparquet.so.[0-9]*)
  list(FILTER arrow_lib EXCLUDE REGEX "\\.so\\.[0-9]+\\.")  # libarrow.so.2600, not .so.2600.1.0
  list(FILTER parquet_lib EXCLUDE REGEX "\\.so\\.[0-9]+\\.")
endif()
if(GRPO_ARROW_VERSION AND arrow_lib AND parquet_lib)
  add_library(grpo_arrow INTERFACE)
  target_include_directories(grpo_arrow SYSTEM INTERFACE ${arrow_include})
  target_link_libraries(grpo_arrow INTERFACE ${parquet_lib} ${arrow_lib})
  target_link_options(grpo_arrow INTERFACE "LINKER:-rpath,${arrow_libdir}")
  message(STATUS "Arrow ${GRPO_ARROW_VERSION} (Parquet datasets) from ${arrow_libdir}")
else()
  message(STATUS "Arrow: no pyarrow in ${GRPO_PYTHON} (scripts/pyenv.sh installs it): .parquet datasets are not read")
endif()
