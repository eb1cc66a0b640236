// live_session.cpp: LIST_USERS for the session's endpoint and key, then one transfer request (any well-formed one:
// a seeder answers it, FILE NOT EXIST or otherwise) on a DEALER that dials exactly that key.
#include "peer/live_session.hpp"

#include "common/codec.hpp"
#include "common/curve_keys.hpp"
#include "common/protocol.hpp"
#include "common/transfer_protocol.hpp"
#include "peer/broker_commands.hpp"
#include "zshare/protocol_ops.hpp"

#include <chrono>

namespace zshare::peer {

namespace {

constexpr std::chrono::milliseconds kAnswerWithin{1000};

// Whether a seeder answers at `endpoint` as `key` (nobody: the connection is refused, or the handshake fails).
bool seeder_answers(zmq::context_t& ctx, const curve::LinkSecurity& security, const std::string& endpoint,
                    const std::string& key) {
  zmq::socket_t probe(ctx, zmq::socket_type::dealer);
  probe.set(zmq::sockopt::linger, 0);
  probe.set(zmq::sockopt::maxmsgsize, transfer::kSocketMaxMessageBytes);
  security.dial(probe, key);
  try {
    probe.connect(endpoint);
  } catch (const zmq::error_t&) {
    return false;
  }
  MapWriter w;
  w.put("v", transfer::kVersion).put("op", transfer::op::kManifest).put("id", std::uint64_t{1});
  w.put("cid", std::string(64, '0'));
  probe.send(zmq::buffer(w.finish()), zmq::send_flags::dontwait);
  zmq::pollitem_t items[] = {{probe.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, kAnswerWithin);
  return (items[0].revents & ZMQ_POLLIN) != 0;
}

}  // namespace

std::optional<CommandResult> refuse_live_session(zmq::context_t& ctx, BrokerClient& broker, const std::string& command,
                                                 const std::string& user) {
  CommandResult listed = ask_broker(command, broker, [&] { return broker.list_users(); });
  if (listed.outcome == Outcome::kUnreachable) return listed;  // the CONNECT would wait for nothing again
  std::string endpoint, key;
  for (const auto& u : listed.fields.value("users", nlohmann::json::array())) {
    if (u.value("user", "") == user) {
      endpoint = u.value("endpoint", "");
      key = u.value("key", "");
    }
  }
  const curve::LinkSecurity& security = broker.security();
  if (endpoint.empty()) return std::nullopt;
  // Under CurveZMQ only a session of our own key is ours to take (another key's CONNECT is DENIED anyway).
  if (!security.plaintext && key != security.own.public_key) return std::nullopt;
  if (!seeder_answers(ctx, security, endpoint, key)) return std::nullopt;
  return CommandResult::local(command, Outcome::kRefused, protocol::status::kUserAlreadyConnected,
                              user + " is already served from " + endpoint + " by another running zshare-peer (its "
                              "seeder answers); stop that one first, or use another user");
}

}  // namespace zshare::peer
