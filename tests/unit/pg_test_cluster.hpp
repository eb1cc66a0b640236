// pg_test_cluster.hpp: a throw-away PostgreSQL cluster for the C++ tests, started once per test process by
// tests/pylib/pg_cluster.py (the one place that knows how to run initdb and pg_ctl) and stopped when the process
// exits; each test takes a fresh database in it. PgTestCluster::get() is null when no PostgreSQL binaries exist,
// and the PostgreSQL cases then fail saying so (tools/install-deps.sh installs them; CI has them).
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include <unistd.h>

#ifndef ZSHARE_PG_CLUSTER_PY
#error "tests/unit/CMakeLists.txt defines ZSHARE_PG_CLUSTER_PY (the path of tests/pylib/pg_cluster.py)"
#endif

namespace zshare::test {

class PgTestCluster {
 public:
  static PgTestCluster* get() {
    static std::unique_ptr<PgTestCluster> cluster = start();
    return cluster.get();
  }

  // The URI of a new, empty database.
  std::string create_database() {
    const std::string name = "zshare_test_" + std::to_string(++databases_);
    return run("createdb '" + folder_ + "' " + name);
  }

  // pg_ctl restart -m fast: every connection is cut; the server is back when this returns.
  void restart() { run("restart '" + folder_ + "'"); }

  ~PgTestCluster() { std::system((command("stop '" + folder_ + "'") + " >/dev/null 2>&1").c_str()); }

 private:
  PgTestCluster(std::string uri_base, std::string folder) : uri_base_(std::move(uri_base)), folder_(std::move(folder)) {}

  static std::string command(const std::string& args) {
    return std::string("/usr/bin/python3 ") + ZSHARE_PG_CLUSTER_PY + " " + args;
  }

  // Runs pg_cluster.py with `args`; its stdout's first line. A failure fails the test with the script's output.
  static std::string run(const std::string& args) {
    FILE* out = ::popen((command(args) + " 2>&1").c_str(), "r");
    REQUIRE(out != nullptr);
    std::string text;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;) text.append(buf, n);
    const int status = ::pclose(out);
    INFO("pg_cluster.py " << args << ":\n" << text);
    REQUIRE(status == 0);
    return text.substr(0, text.find('\n'));
  }

  static std::unique_ptr<PgTestCluster> start() {
    if (std::system((command("bindir") + " >/dev/null 2>&1").c_str()) != 0) return nullptr;
    std::istringstream line(run("start --owner-pid " + std::to_string(::getpid())));
    std::string uri_base, folder;
    line >> uri_base >> folder;
    REQUIRE(!folder.empty());
    return std::unique_ptr<PgTestCluster>(new PgTestCluster(uri_base, folder));
  }

  std::string uri_base_;
  std::string folder_;
  int databases_ = 0;
};

}  // namespace zshare::test
