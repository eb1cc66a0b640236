// cli_parse.hpp: one exit-code scheme for every program's command line: --help and --version exit 0, a usage
// error exits 2 with CLI11's message (never CLI11's own codes such as 106 or 109). Header-only: CLI11 is too.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "common/byte_size.hpp"
#include "common/endpoint_list.hpp"

namespace zshare::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFail = 1;   // the operation was refused or failed (a FAIL status)
inline constexpr int kExitUsage = 2;  // usage or connection error

// Parses argv; nullopt when the program should go on, else the code it should exit with (help printed: 0).
inline std::optional<int> parse(CLI::App& app, int argc, const char* const* argv, std::ostream& out = std::cout,
                                std::ostream& err = std::cerr) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ConfigError& e) {
    const std::string what = e.what();
    const std::string prefix = "INI was not able to parse ";  // CLI11's words for a key nothing takes
    if (what.rfind(prefix, 0) != 0) return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
    const std::string program = app.get_name().substr(app.get_name().rfind('/') + 1);  // argv[0] without its path
    err << program << ": the config file has an unknown key '" << what.substr(prefix.size())
        << "' (the keys are the long options of --help; a section such as [get] holds a subcommand's)\n";
    return kExitUsage;
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
  }
}

// The config file read without --config: $ZSHARE_CONFIG when set (it must exist), else the first that exists of
// `first` (the peer's $ZSHARE_HOME/config.toml), $XDG_CONFIG_HOME/zshare/NAME.toml (~/.config/zshare/ without
// XDG_CONFIG_HOME) and /etc/zshare/NAME.toml; "" when none does.
inline std::string default_config_file(const std::string& name, const std::vector<std::string>& first = {}) {
  if (const char* chosen = std::getenv("ZSHARE_CONFIG"); chosen && *chosen) return chosen;
  std::vector<std::string> candidates = first;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    candidates.push_back(std::string(xdg) + "/zshare/" + name + ".toml");
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    candidates.push_back(std::string(home) + "/.config/zshare/" + name + ".toml");
  }
  candidates.push_back("/etc/zshare/" + name + ".toml");
  for (const auto& path : candidates) {
    if (::access(path.c_str(), F_OK) == 0) return path;
  }
  return "";
}

// `--config FILE` (TOML or INI), else default_config_file(name, first). A key the program does not know is an
// error that names it, so a typo (`brokr = ...`) is never silently ignored. Call before adding subcommands: they
// take the rule from their parent.
inline CLI::Option* config_option(CLI::App& app, const std::string& name, const std::string& description,
                                  const std::vector<std::string>& first = {}) {
  app.allow_config_extras(CLI::config_extras_mode::error);
  const bool chosen = std::getenv("ZSHARE_CONFIG") && *std::getenv("ZSHARE_CONFIG");
  return app.set_config("--config", default_config_file(name, first),
                        description + " (default: $ZSHARE_CONFIG, else the first that exists of " +
                            "$XDG_CONFIG_HOME/zshare/" + name + ".toml or ~/.config/zshare/" + name +
                            ".toml, /etc/zshare/" + name + ".toml)",
                        chosen);  // a ZSHARE_CONFIG that does not exist is an error, not silence
}

// CLI11 transform for byte sizes and rates: "10M", "1.5G", "65536" become a plain number of bytes.
inline CLI::Validator byte_size() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        auto bytes = parse_byte_size(value);
        if (!bytes) return "'" + value + "' is not a size (examples: 65536, 512K, 10M, 1.5G)";
        value = std::to_string(*bytes);
        return "";
      },
      "SIZE (K, M, G, T: binary multiples)");
}

// CLI11 check for an endpoint list (`--broker tcp://a:5555,tcp://b:5555`): every entry tcp://HOST:PORT, the bad one
// named. Applies to the option's value from the command line, the environment and the config file alike.
inline CLI::Validator endpoint_list() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          parse_endpoint_list(value);
          return "";
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      },
      "ENDPOINT[,ENDPOINT...]");
}

// An option taking an endpoint list (checked by endpoint_list()), read from the environment variable `env` too.
inline CLI::Option* add_endpoint_list(CLI::App& app, const std::string& name, std::string& value,
                                      const std::string& description, const std::string& env) {
  return app.add_option(name, value, description)->envname(env)->check(endpoint_list())->capture_default_str();
}

}  // namespace zshare::cli
