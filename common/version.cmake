# version.cmake: writes <OUT_DIR>/version.hpp (from common/version.hpp.in) and <OUT_DIR>/version.txt (the
# line's version part, "0.1.0 (git 47249bc)", for zshare-harness) from VERSION and, when SOURCE_DIR is a git
# checkout, its short HEAD commit. Run with -P at every build (common/CMakeLists.txt); a file is rewritten only
# when its text changes, so a build at the same commit recompiles nothing.
# Inputs: -DVERSION= -DSOURCE_DIR= -DGIT_EXECUTABLE= (may be empty) -DIN= -DOUT_DIR=
set(ZSHARE_VERSION "${VERSION}")
set(ZSHARE_GIT_COMMIT "")
if(GIT_EXECUTABLE AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${SOURCE_DIR}" rev-parse --short HEAD
                  OUTPUT_VARIABLE ZSHARE_GIT_COMMIT RESULT_VARIABLE _rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    set(ZSHARE_GIT_COMMIT "")
  endif()
endif()
if(ZSHARE_GIT_COMMIT)
  set(ZSHARE_VERSION_TEXT "${ZSHARE_VERSION} (git ${ZSHARE_GIT_COMMIT})")
else()
  set(ZSHARE_VERSION_TEXT "${ZSHARE_VERSION}")
endif()

configure_file("${IN}" "${OUT_DIR}/version.hpp" @ONLY)
set(_txt "${ZSHARE_VERSION_TEXT}\n")
if(EXISTS "${OUT_DIR}/version.txt")
  file(READ "${OUT_DIR}/version.txt" _old)
endif()
if(NOT _old STREQUAL _txt)
  file(WRITE "${OUT_DIR}/version.txt" "${_txt}")
endif()
