// zmq_stream.cpp: zshare-bench-zmq-stream: the raw ZeroMQ stream baseline of bench/run_transfer_bench.sh (GUIDE.md
// section 4): the same bytes as a zshare transfer, in fixed-size messages over tcp loopback, with no disk at the
// receiver, no hashing and no protocol: the transport's own limit, plaintext or CURVE.
//
// Two processes, as a seeder and a getter are: the program forks before it makes any ZeroMQ context. The child
// is the sender (PUSH, binds 127.0.0.1 on an ephemeral port; with --curve it is the CURVE server); the parent is
// the receiver (PULL, connects; the CURVE client). Both keypairs come from zmq_curve_keypair. SNDHWM = RCVHWM =
// --window messages is the credit: at most that many messages queued at each end. Each message is a fresh
// zmq::message_t the sender fills with pread from --file (a tmpfs file: the copy a seeder's read into the frame
// costs), or from a buffer of random bytes without --file. The receiver counts the bytes and drops them.
//
// Time: from the receiver's connect (so the CURVE handshake is in it, as a `get`'s is) to its last byte. CPU:
// getrusage(RUSAGE_SELF) of each process at its end (every thread, ZeroMQ's I/O thread included); the child
// sends its figure to the parent over a pipe. Output, one line on stdout:
//   RESULT mode=curve bytes=N seconds=S cpu=C cpu_send=C1 cpu_recv=C2 msg_size=M window=W
// Exit status 0 when every byte arrived, 1 otherwise (with a message on stderr).
#include <zmq.hpp>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

struct Options {
  std::uint64_t bytes = 0;
  std::size_t msg_size = 1 << 20;
  int window = 32;
  bool curve = false;
  std::string file;
  int timeout_s = 300;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --bytes N [--msg-size 1048576] [--window 32] [--curve] [--file PATH] [--timeout 300]\n"
               "  sends N bytes (default: the size of --file) over tcp loopback, PUSH -> PULL, and prints\n"
               "  RESULT mode=plain|curve bytes= seconds= cpu= cpu_send= cpu_recv= msg_size= window=\n",
               argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (a == "--bytes") o.bytes = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--msg-size") o.msg_size = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--window") o.window = std::atoi(value().c_str());
    else if (a == "--curve") o.curve = true;
    else if (a == "--file") o.file = value();
    else if (a == "--timeout") o.timeout_s = std::atoi(value().c_str());
    else usage(argv[0]);
  }
  if (o.msg_size == 0 || o.window < 1 || o.timeout_s < 1) usage(argv[0]);
  return o;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

bool write_all(int fd, const std::string& s) {
  return ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

std::string read_line(int fd) {  // up to '\n' or EOF; the pipes carry one short line each
  std::string s;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') s.push_back(c);
  return s;
}

struct Keys {
  char server_public[41], server_secret[41], client_public[41], client_secret[41];
};

// The child: bind, tell the parent where, send `bytes` in messages of msg_size, flush (linger), report CPU.
int run_sender(const Options& o, const Keys& k, int endpoint_fd, int cpu_fd) {
  int file_fd = -1;
  if (!o.file.empty()) {
    file_fd = ::open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (file_fd < 0) {
      std::perror(o.file.c_str());
      return 1;
    }
  }
  std::vector<char> pattern;
  if (file_fd < 0) {
    pattern.resize(o.msg_size);
    std::mt19937_64 rng(12345);
    for (std::size_t i = 0; i + 8 <= pattern.size(); i += 8) {
      std::uint64_t v = rng();
      std::memcpy(&pattern[i], &v, 8);
    }
  }
  {
    zmq::context_t ctx(1);
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::sndhwm, o.window);
    push.set(zmq::sockopt::linger, o.timeout_s * 1000);
    if (o.curve) {
      push.set(zmq::sockopt::curve_server, true);
      push.set(zmq::sockopt::curve_secretkey, std::string(k.server_secret, 40));
    }
    push.bind("tcp://127.0.0.1:*");
    if (!write_all(endpoint_fd, push.get(zmq::sockopt::last_endpoint) + "\n")) return 1;
    ::close(endpoint_fd);
    for (std::uint64_t sent = 0; sent < o.bytes;) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(o.msg_size, o.bytes - sent));
      zmq::message_t msg(n);
      if (file_fd >= 0) {
        ssize_t got = ::pread(file_fd, msg.data(), n, static_cast<off_t>(sent));
        if (got != static_cast<ssize_t>(n)) {
          std::fprintf(stderr, "zmq_stream: short read of %s at %" PRIu64 "\n", o.file.c_str(), sent);
          return 1;
        }
      } else {
        std::memcpy(msg.data(), pattern.data(), n);
      }
      push.send(msg, zmq::send_flags::none);
      sent += n;
    }
    push.close();  // blocks (up to the linger) until every queued message is on the wire
  }                // ctx's end joins the I/O thread, so its CPU is in the figure below
  if (file_fd >= 0) ::close(file_fd);
  char line[64];
  std::snprintf(line, sizeof line, "%.6f\n", cpu_seconds());
  return write_all(cpu_fd, line) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  if (o.bytes == 0 && !o.file.empty()) {
    int fd = ::open(o.file.c_str(), O_RDONLY);
    if (fd < 0) {
      std::perror(o.file.c_str());
      return 1;
    }
    o.bytes = static_cast<std::uint64_t>(::lseek(fd, 0, SEEK_END));
    ::close(fd);
  }
  if (o.bytes == 0) usage(argv[0]);

  Keys k{};
  if (o.curve && (zmq_curve_keypair(k.server_public, k.server_secret) != 0 ||
                  zmq_curve_keypair(k.client_public, k.client_secret) != 0)) {
    std::fprintf(stderr, "zmq_stream: zmq_curve_keypair failed (libzmq built without CURVE?)\n");
    return 1;
  }

  int endpoint_pipe[2], cpu_pipe[2];
  if (::pipe(endpoint_pipe) != 0 || ::pipe(cpu_pipe) != 0) {
    std::perror("pipe");
    return 1;
  }
  pid_t child = ::fork();
  if (child < 0) {
    std::perror("fork");
    return 1;
  }
  if (child == 0) {
    ::close(endpoint_pipe[0]);
    ::close(cpu_pipe[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);                // never outlives the receiver (timeout(1) kills it)
    if (::getppid() == 1) ::_exit(1);
    alarm(static_cast<unsigned>(o.timeout_s) + 30);  // nor a stuck one by much
    int rc = 1;
    try {
      rc = run_sender(o, k, endpoint_pipe[1], cpu_pipe[1]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "zmq_stream sender: %s\n", e.what());
    }
    ::_exit(rc);
  }
  ::close(endpoint_pipe[1]);
  ::close(cpu_pipe[1]);

  auto kill_child = [&] {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  };
  std::string endpoint = read_line(endpoint_pipe[0]);
  if (endpoint.empty()) {
    std::fprintf(stderr, "zmq_stream: the sender did not bind\n");
    kill_child();
    return 1;
  }

  std::uint64_t received = 0;
  double seconds = 0;
  {
    zmq::context_t ctx(1);
    zmq::socket_t pull(ctx, zmq::socket_type::pull);
    pull.set(zmq::sockopt::rcvhwm, o.window);
    pull.set(zmq::sockopt::rcvtimeo, 10000);  // a stall of 10 s ends the run
    pull.set(zmq::sockopt::linger, 0);
    if (o.curve) {
      pull.set(zmq::sockopt::curve_serverkey, std::string(k.server_public, 40));
      pull.set(zmq::sockopt::curve_publickey, std::string(k.client_public, 40));
      pull.set(zmq::sockopt::curve_secretkey, std::string(k.client_secret, 40));
    }
    auto t0 = std::chrono::steady_clock::now();
    auto deadline = t0 + std::chrono::seconds(o.timeout_s);
    pull.connect(endpoint);
    zmq::message_t msg;
    while (received < o.bytes && std::chrono::steady_clock::now() < deadline) {
      if (!pull.recv(msg, zmq::recv_flags::none)) break;  // rcvtimeo
      received += msg.size();
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  double cpu_recv = cpu_seconds();
  if (received != o.bytes) {
    std::fprintf(stderr, "zmq_stream: received %" PRIu64 " of %" PRIu64 " bytes\n", received, o.bytes);
    kill_child();
    return 1;
  }
  std::string cpu_line = read_line(cpu_pipe[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (cpu_line.empty() || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "zmq_stream: the sender failed\n");
    return 1;
  }
  double cpu_send = std::strtod(cpu_line.c_str(), nullptr);
  std::printf("RESULT mode=%s bytes=%" PRIu64 " seconds=%.6f cpu=%.6f cpu_send=%.6f cpu_recv=%.6f msg_size=%zu "
              "window=%d\n",
              o.curve ? "curve" : "plain", received, seconds, cpu_send + cpu_recv, cpu_send, cpu_recv, o.msg_size,
              o.window);
  return 0;
}
