# broker_process_tests.cmake: process tests of a real zshare-broker (bad input, crash durability, its events
# through zshare-events across restarts), and on PostgreSQL (a throw-away cluster each test starts): crash
# durability again, and PostgreSQL stopped and restarted under load (those skip, exit 77 saying so, only when no
# PostgreSQL binaries are installed); and the broker benchmark's own tools.
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
add_test(NAME durability_pg
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/durability.py
                 --broker-bin $<TARGET_FILE:zshare-broker> --store postgresql)
add_test(NAME pg_outage
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/pg_outage_test.py
                 --broker-bin $<TARGET_FILE:zshare-broker>)
set_tests_properties(durability_pg pg_outage PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 180
                     SKIP_RETURN_CODE 77)
# The broker benchmark's tools (bench/): seed, calibrate and the echo's canned replies, on a small index.
add_test(NAME bench_tools
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/bench_tools_test.py
                 --broker-bin $<TARGET_FILE:zshare-broker> --load-bin $<TARGET_FILE:zshare-bench-load>)
set_tests_properties(bench_tools PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 120)
