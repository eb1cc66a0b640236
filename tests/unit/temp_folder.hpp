// temp_folder.hpp: a fresh folder under /tmp for one test, removed with everything in it when the test ends.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include <unistd.h>

namespace zshare::test {

struct TempFolder {
  explicit TempFolder(const std::string& label = "zshare-test") {
    std::string pattern = "/tmp/" + label + "-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempFolder() { std::system(("rm -rf '" + path + "'").c_str()); }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  std::string operator/(const std::string& name) const { return path + "/" + name; }

  std::string path;
};

}  // namespace zshare::test
