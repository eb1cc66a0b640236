// test_peer_shell_parse.cpp: the peer's pure logic: console line parsing and syntax, output formatting,
// request ids, advertised endpoints, and exit codes. No sockets, no broker.
#include "peer/command_result.hpp"
#include "peer/request_ids.hpp"
#include "peer/response_printer.hpp"
#include "peer/shell_command.hpp"
#include "peer/seeder.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>

using namespace zshare::peer;
using nlohmann::json;

TEST_CASE("a console line splits into an upper-case command and its words", "[peer][shell]") {
  auto c = parse_shell_command("  register   alice\t");
  CHECK(c.name == "REGISTER");
  REQUIRE(c.args.size() == 1);
  CHECK(c.args[0] == "alice");

  CHECK(parse_shell_command("List_Users").name == "LIST_USERS");
  CHECK(parse_shell_command("").name.empty());
  CHECK(parse_shell_command("   \t ").name.empty());
  CHECK(parse_shell_command("QUIT\r").name == "QUIT");  // CRLF input
}

TEST_CASE("double quotes make one word of text with spaces", "[peer][shell]") {
  auto c = parse_shell_command(R"(GET_FILE bob "my song.mp3" "/tmp/a b")");
  REQUIRE(c.args.size() == 3);
  CHECK(c.args[1] == "my song.mp3");
  CHECK(c.args[2] == "/tmp/a b");
  CHECK_FALSE(c.unterminated_quote);
  CHECK(parse_shell_command(R"(DELETE "open)").unterminated_quote);
}

TEST_CASE("text_after keeps the free text of PUBLISH and SEARCH as typed", "[peer][shell]") {
  auto p = parse_shell_command("PUBLISH /tmp/song.mp3   A  great song, 2024  ");
  CHECK(p.args[0] == "/tmp/song.mp3");
  CHECK(p.text_after(1) == "A  great song, 2024");
  CHECK(p.text_after(0) == "/tmp/song.mp3   A  great song, 2024");
  CHECK(parse_shell_command("PUBLISH /tmp/x").text_after(1).empty());
  CHECK(parse_shell_command(R"(PUBLISH "/tmp/a b.txt" notes)").text_after(1) == "notes");
  CHECK(parse_shell_command("search  great   song").text_after(0) == "great   song");
  CHECK(parse_shell_command("SEARCH x").text_after(5).empty());
}

TEST_CASE("every console command is known with its argument count", "[peer][shell]") {
  for (const char* name : {"REGISTER", "UNREGISTER", "CONNECT", "DISCONNECT", "PUBLISH", "DELETE", "LIST_USERS",
                           "LIST_CONTENT", "SEARCH", "GET_FILE", "QUIT"}) {
    CHECK(find_command(name) != nullptr);
  }
  CHECK(find_command("FOO") == nullptr);
  CHECK(find_command("register") == nullptr);  // callers upper-case first

  const auto& reg = *find_command("REGISTER");
  CHECK_FALSE(usage_problem(parse_shell_command("REGISTER alice"), reg));
  auto missing = usage_problem(parse_shell_command("REGISTER"), reg);
  REQUIRE(missing);
  CHECK(missing->find("usage: REGISTER <user>") != std::string::npos);
  CHECK(usage_problem(parse_shell_command("REGISTER alice bob"), reg));
  CHECK(usage_problem(parse_shell_command(R"(REGISTER "")"), reg));

  const auto& get = *find_command("GET_FILE");
  CHECK(usage_problem(parse_shell_command("GET_FILE bob x"), get));
  CHECK_FALSE(usage_problem(parse_shell_command("GET_FILE bob x /tmp/x"), get));
  CHECK_FALSE(usage_problem(parse_shell_command("PUBLISH /a lots of words here"), *find_command("PUBLISH")));
  CHECK(usage_problem(parse_shell_command("QUIT now"), *find_command("QUIT")));
  CHECK(command_names().find("GET_FILE") != std::string::npos);
}

TEST_CASE("HELP has a line per command: its syntax, then what it does", "[peer][shell]") {
  const auto* help = find_command("HELP");
  REQUIRE(help != nullptr);
  CHECK_FALSE(usage_problem(parse_shell_command("HELP"), *help));
  CHECK_FALSE(usage_problem(parse_shell_command("help get_file"), *help));
  CHECK(usage_problem(parse_shell_command("HELP a b"), *help));
  for (const auto& c : shell_commands()) {
    const std::string line = help_line(c);
    CHECK(line.rfind(std::string(c.usage) + "\t", 0) == 0);
    CHECK(line.size() > c.usage.size() + 1);               // every command says what it does
    CHECK(line.find('\n') == std::string::npos);           // on one line
  }
  CHECK(help_line(*find_command("DELETE")) == "DELETE <name>\twithdraws a published file (needs CONNECT)");
}

TEST_CASE("Tab completion offers the command names that start with what is typed", "[peer][shell]") {
  CHECK(complete_command("HE") == std::vector<std::string>{"HELP"});
  CHECK(complete_command("he") == std::vector<std::string>{"help"});  // typed in lower case, kept so
  CHECK(complete_command("List_") == std::vector<std::string>{"LIST_USERS", "LIST_CONTENT"});
  CHECK(complete_command("D") == std::vector<std::string>{"DISCONNECT", "DELETE"});
  CHECK(complete_command("X").empty());
  CHECK(complete_command("").size() == shell_commands().size());
}

TEST_CASE("the first output line is '<CMD> OK' or '<CMD> FAIL, <STATUS>'", "[peer][output]") {
  CommandResult ok = CommandResult::local("REGISTER", Outcome::kOk, "OK", "");
  CHECK(text_lines(ok) == std::vector<std::string>{"REGISTER OK"});

  CommandResult refused = CommandResult::local("REGISTER", Outcome::kRefused, "USERNAME IN USE", "taken");
  CHECK(text_lines(refused) == std::vector<std::string>{"REGISTER FAIL, USERNAME IN USE"});
}

TEST_CASE("listing replies print one tab- or space-separated line per item", "[peer][output]") {
  BrokerReply users{"OK", "", json::parse(R"({"status":"OK","users":[
      {"user":"alice","endpoint":"tcp://127.0.0.1:4000"},{"user":"bob","endpoint":"tcp://h:5"}]})")};
  CHECK(text_lines(CommandResult::from_reply("LIST_USERS", users)) ==
        std::vector<std::string>{"LIST_USERS OK", "alice tcp://127.0.0.1:4000", "bob tcp://h:5"});

  BrokerReply files{"OK", "", json::parse(R"({"status":"OK","files":[
      {"name":"a.txt","size":12,"cid":"ab","description":"two\tlines\nhere","chunk_size":262144}]})")};
  CHECK(text_lines(CommandResult::from_reply("LIST_CONTENT", files)) ==
        std::vector<std::string>{"LIST_CONTENT OK", "a.txt\t12\tab\ttwo lines here"});

  BrokerReply found{"OK", "", json::parse(R"({"status":"OK","next":null,"results":[
      {"user":"bob","name":"s.mp3","size":3,"cid":"ef","endpoint":"","online":false,"description":"song"}]})")};
  CHECK(text_lines(CommandResult::from_reply("SEARCH", found)) ==
        std::vector<std::string>{"SEARCH OK", "bob\ts.mp3\t3\tef\t\tsong"});
}

TEST_CASE("a refused listing prints only its status line", "[peer][output]") {
  BrokerReply reply{"USER DOES NOT EXIST", "no user 'x'", json::parse(R"({"status":"USER DOES NOT EXIST"})")};
  auto result = CommandResult::from_reply("LIST_CONTENT", reply);
  CHECK(text_lines(result) == std::vector<std::string>{"LIST_CONTENT FAIL, USER DOES NOT EXIST"});
  CHECK(result.diagnostic == "no user 'x'");
  CHECK(exit_code(result) == 1);
}

TEST_CASE("JSON output is the reply's fields plus command, on one line", "[peer][output]") {
  BrokerReply reply{"OK", "", json::parse(R"({"v":3,"id":"p:1","status":"OK","users":[]})")};
  auto line = json_line(CommandResult::from_reply("LIST_USERS", reply));
  CHECK(line.find('\n') == std::string::npos);
  auto parsed = json::parse(line);
  CHECK(parsed["command"] == "LIST_USERS");
  CHECK(parsed["status"] == "OK");
  CHECK(parsed["id"] == "p:1");
  CHECK(parsed["users"].is_array());

  auto local = json::parse(json_line(CommandResult::local("PUBLISH", Outcome::kRefused, "USER NOT CONNECTED", "x")));
  CHECK(local["status"] == "USER NOT CONNECTED");
  CHECK(local["error"] == "x");

  BrokerReply odd{"OK", "", json{{"status", "OK"}, {"name", std::string("bad\xff")}}};
  CHECK_NOTHROW(json::parse(json_line(CommandResult::from_reply("X", odd))));
}

TEST_CASE("the printer sends data to stdout and the diagnostic to stderr", "[peer][output]") {
  std::ostringstream out, err;
  ResponsePrinter text(out, err, OutputFormat::kText);
  text.print(CommandResult::local("CONNECT", Outcome::kRefused, "USER ALREADY CONNECTED", "alice is connected"));
  CHECK(out.str() == "CONNECT FAIL, USER ALREADY CONNECTED\n");
  CHECK(err.str() == "CONNECT: alice is connected\n");
}

TEST_CASE("exit codes: 0 OK, 1 a FAIL status, 2 usage or connection errors", "[peer][output]") {
  CHECK(exit_code(CommandResult::local("R", Outcome::kOk, "OK", "")) == 0);
  CHECK(exit_code(CommandResult::local("R", Outcome::kRefused, "USERNAME IN USE", "")) == 1);
  CHECK(exit_code(CommandResult::local("R", Outcome::kUsage, "BAD REQUEST", "")) == 2);
  CHECK(exit_code(CommandResult::local("R", Outcome::kUnreachable, "BROKER UNREACHABLE", "")) == 2);
}

TEST_CASE("request ids are a 128-bit hex prefix and an increasing counter", "[peer][ids]") {
  auto ids = RequestIds::random();
  CHECK(ids.prefix().size() == 32);
  CHECK(ids.prefix().find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(ids.next() == ids.prefix() + ":1");
  CHECK(ids.next() == ids.prefix() + ":2");
  CHECK(RequestIds::random().prefix() != ids.prefix());
}

TEST_CASE("the advertised endpoint replaces only the host", "[peer][endpoint]") {
  CHECK(advertised_endpoint("tcp://127.0.0.1:4000", std::nullopt) == "tcp://127.0.0.1:4000");
  CHECK(advertised_endpoint("tcp://0.0.0.0:4000", std::string("files.example")) == "tcp://files.example:4000");
  CHECK(advertised_endpoint("tcp://[::1]:4000", std::string("10.0.0.7")) == "tcp://10.0.0.7:4000");
  CHECK(advertised_endpoint("tcp://0.0.0.0:4000", std::string("tcp://gateway.example:6001")) ==
        "tcp://gateway.example:6001");
  CHECK(advertised_endpoint("tcp://0.0.0.0:4000", std::string("fe80::1")) == "tcp://[fe80::1]:4000");
  CHECK_THROWS_AS(advertised_endpoint("ipc:///tmp/x", std::nullopt), std::invalid_argument);
}
