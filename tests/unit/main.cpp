// main.cpp: Catch2's main for the unit test binary.
// Test files only hold TEST_CASEs.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
