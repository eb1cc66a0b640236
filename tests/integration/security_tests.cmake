# security_tests.cmake: CurveZMQ process tests, included from tests/integration/CMakeLists.txt. security_test.py
# captures every link through raw TCP relays and checks wrong keys, other users' keys and loose key files.
add_test(NAME security
  COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/security_test.py
          --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>
          --events-bin $<TARGET_FILE:zshare-events>)
set_tests_properties(security PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 240)
