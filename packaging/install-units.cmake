# install-units.cmake: installs examples/systemd/*.service into <prefix>/lib/systemd/system (where Debian packages
# put units; not the multiarch CMAKE_INSTALL_LIBDIR). Run by `cmake --install` and by cpack (an install(CODE) of
# the top-level CMakeLists.txt sets ZSHARE_UNIT_SOURCES, ZSHARE_UNIT_BINDIR and ZSHARE_UNIT_STAGING first).
# The sources name the default prefix's programs (ExecStart=/usr/local/bin/...) so examples/systemd/ reads as it
# installs by default; the prefix is chosen at install time (`cmake --install --prefix`, /usr in the .deb), so
# ExecStart is rewritten here, not at configure time.
if(IS_ABSOLUTE "${ZSHARE_UNIT_BINDIR}")
  set(_zshare_bindir "${ZSHARE_UNIT_BINDIR}")
else()
  set(_zshare_bindir "${CMAKE_INSTALL_PREFIX}/${ZSHARE_UNIT_BINDIR}")
endif()
string(REGEX REPLACE "/+" "/" _zshare_bindir "${_zshare_bindir}")
string(REGEX REPLACE "/$" "" _zshare_bindir "${_zshare_bindir}")
# One staging folder per destination: a test's install and cpack's may run at the same time.
string(MD5 _zshare_tag "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
set(_zshare_staged "")
foreach(_zshare_src IN LISTS ZSHARE_UNIT_SOURCES)
  get_filename_component(_zshare_name "${_zshare_src}" NAME)
  file(READ "${_zshare_src}" _zshare_text)
  string(REPLACE "\nExecStart=/usr/local/bin/" "\nExecStart=${_zshare_bindir}/" _zshare_text "${_zshare_text}")
  file(WRITE "${ZSHARE_UNIT_STAGING}/${_zshare_tag}/${_zshare_name}" "${_zshare_text}")
  list(APPEND _zshare_staged "${ZSHARE_UNIT_STAGING}/${_zshare_tag}/${_zshare_name}")
endforeach()
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES ${_zshare_staged})
file(REMOVE_RECURSE "${ZSHARE_UNIT_STAGING}/${_zshare_tag}")
