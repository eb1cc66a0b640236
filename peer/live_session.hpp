// live_session.hpp: whether a running process already holds a user's session, asked before taking it. Under
// CurveZMQ the broker gives the owner's key the session at once (its CONNECT replaces the one in place), so a
// second `serve` or shell of the same user would take it from a live one: they ask first. The broker lists the
// session's endpoint; a seeder that answers there, with the key the broker lists for the user, is alive.
#pragma once

#include "peer/broker_client.hpp"
#include "peer/command_result.hpp"

#include <zmq.hpp>

#include <optional>
#include <string>

namespace zshare::peer {

// What `command` must answer instead of connecting `user`: USER ALREADY CONNECTED naming the endpoint where
// another process's seeder answers for the user, or why the broker could not be asked (BROKER UNREACHABLE...).
// nullopt when nothing stands in the way: the user has no session, or a leftover one nobody answers for (its
// process died), or another key's (the CONNECT will be DENIED).
std::optional<CommandResult> refuse_live_session(zmq::context_t& ctx, BrokerClient& broker, const std::string& command,
                                                 const std::string& user);

}  // namespace zshare::peer
