# broker_process_tests.cmake: process tests of a real zshare-broker (bad input, crash durability, its events
# through zshare-events across restarts).
# Included from tests/integration/CMakeLists.txt; ZSHARE_PYTHON and ZSHARE_TEST_PYTHONPATH come from tests/.
foreach(name bad_input durability)
  add_test(NAME ${name}
           COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/${name}.py
                   --broker-bin $<TARGET_FILE:zshare-broker>)
  set_tests_properties(${name} PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 120)
endforeach()
add_test(NAME events_restart
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/events_test.py
                 --broker-bin $<TARGET_FILE:zshare-broker> --events-bin $<TARGET_FILE:zshare-events>)
set_tests_properties(events_restart PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 120)
