# install_tests.cmake: `cmake --install` into a temporary prefix installs the programs, units, example configs,
# schemas and zshare-harness, and each installed program's --version prints its name and PROJECT_VERSION.
# Included from tests/integration/CMakeLists.txt; ZSHARE_PYTHON comes from tests/.
add_test(NAME install
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/install_test.py --cmake ${CMAKE_COMMAND}
                 --build-dir ${PROJECT_BINARY_DIR} --source-dir ${PROJECT_SOURCE_DIR})
set_tests_properties(install PROPERTIES TIMEOUT 120 RESOURCE_LOCK build-tree-install)  # one install at a time: both write install_manifest.txt
