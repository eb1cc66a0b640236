# package_tests.cmake: `make package`'s .deb (cpack from this build tree, into a temporary folder): its control
# fields, its files against `cmake --install`'s, the packaged programs' --version, the units (systemd-analyze
# verify and security --offline) and the maintainer scripts run against recording stubs.
# Included from tests/integration/CMakeLists.txt; ZSHARE_PYTHON comes from tests/.
add_test(NAME package
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/package_test.py --cmake ${CMAKE_COMMAND}
                 --cpack ${CMAKE_CPACK_COMMAND} --build-dir ${PROJECT_BINARY_DIR} --source-dir ${PROJECT_SOURCE_DIR})
set_tests_properties(package PROPERTIES TIMEOUT 180 RESOURCE_LOCK build-tree-install)  # see install_tests.cmake
