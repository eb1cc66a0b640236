# broker_process_tests.cmake: process tests of a real zshare-broker (bad input, crash durability).
# Included from tests/integration/CMakeLists.txt; ZSHARE_PYTHON and ZSHARE_TEST_PYTHONPATH come from tests/.
foreach(name bad_input durability)
  add_test(NAME ${name}
           COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/${name}.py
                   --broker-bin $<TARGET_FILE:zshare-broker>)
  set_tests_properties(${name} PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 120)
endforeach()
