// rpclog_xdr.cpp: conversions between LogRecord and rpcgen's log_record.
// XDR strings are char*; a null one (never sent by us) reads as empty.
#include "rpclog/rpclog_xdr.hpp"

#include <cstring>

namespace zshare::rpclog {

namespace {

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

}  // namespace

LogRecord from_xdr(const log_record& in) {
  LogRecord r;
  r.broker_id = str(in.broker_id);
  r.seq = in.seq;
  r.timestamp = str(in.timestamp);
  r.ts_local = in.ts_local;
  r.user = str(in.user);
  r.operation = str(in.operation);
  r.args = str(in.args);
  return r;
}

void to_xdr(const LogRecord& in, log_record& out) {
  out.broker_id = const_cast<char*>(in.broker_id.c_str());
  out.seq = in.seq;
  out.timestamp = const_cast<char*>(in.timestamp.c_str());
  out.ts_local = in.ts_local;
  out.user = const_cast<char*>(in.user.c_str());
  out.operation = const_cast<char*>(in.operation.c_str());
  out.args = const_cast<char*>(in.args.c_str());
}

void to_xdr_malloc(const LogRecord& in, log_record& out) {
  out.broker_id = ::strdup(in.broker_id.c_str());
  out.seq = in.seq;
  out.timestamp = ::strdup(in.timestamp.c_str());
  out.ts_local = in.ts_local;
  out.user = ::strdup(in.user.c_str());
  out.operation = ::strdup(in.operation.c_str());
  out.args = ::strdup(in.args.c_str());
}

}  // namespace zshare::rpclog
