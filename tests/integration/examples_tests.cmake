# examples/ stays working: the Python search client against a real broker, and the example config files.
add_test(NAME examples COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/examples_test.py
  --broker-bin $<TARGET_FILE:zshare-broker> --bin-dir ${PROJECT_BINARY_DIR} --examples ${PROJECT_SOURCE_DIR}/examples)
set_tests_properties(examples PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 60)
