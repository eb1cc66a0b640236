// time_service.cpp: each operation reads the system clock once; `now` derives all three forms from that
// one reading. GET /?wsdl answers the embedded WSDL with Content-Length, so keep-alive survives it.
#include "timesvc/time_service.hpp"

#include <sys/socket.h>

#include <cstring>

#include "common/timestamp.hpp"
#include "timesvc/time_formats.hpp"
#include "timesvc/wsdl.hpp"

namespace zshare::timesvc {

TimeService::TimeService() : ztsrv::ZshareTimeService(SOAP_IO_KEEPALIVE, SOAP_IO_KEEPALIVE) {
  soap->fget = &TimeService::http_get;
  soap->socket_flags = MSG_NOSIGNAL;  // a client that went away must not kill the server with SIGPIPE
}

TimeService* TimeService::copy() {
  auto* dup = new TimeService();
  soap_done(dup->soap);
  soap_copy_context(dup->soap, soap);
  dup->soap->master = SOAP_INVALID_SOCKET;
  dup->soap->socket = SOAP_INVALID_SOCKET;
  return dup;
}

int TimeService::now(ztsrv::zt__nowResponse& response) {
  const std::int64_t ms = now_epoch_ms();
  response.iso8601 = iso8601_utc(ms);
  response.epochMs = ms;
  response.seeds = seeds_utc(ms);
  return SOAP_OK;
}

int TimeService::getIso8601(std::string& iso8601) {
  iso8601 = now_iso8601_utc();
  return SOAP_OK;
}

int TimeService::getEpochMs(LONG64& epochMs) {
  epochMs = now_epoch_ms();
  return SOAP_OK;
}

int TimeService::getSeeds(std::string& seeds) {
  seeds = seeds_utc(now_epoch_ms());
  return SOAP_OK;
}

std::string TimeService::wsdl_for(const std::string& host, const std::string& fallback_location) {
  std::string wsdl(generated_wsdl());
  // Only a plain host[:port] may go into the document; anything else falls back.
  bool host_ok = !host.empty() && host.size() < 256;
  for (char c : host) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                   c == '-' || c == ':' || c == '[' || c == ']';
    host_ok = host_ok && allowed;
  }
  const std::string location = host_ok ? "http://" + host : fallback_location;
  const std::string needle = "location=\"" + std::string(kWsdlDefaultLocation) + "\"";
  for (auto pos = wsdl.find(needle); pos != std::string::npos; pos = wsdl.find(needle, pos)) {
    const std::string replacement = "location=\"" + location + "\"";
    wsdl.replace(pos, needle.size(), replacement);
    pos += replacement.size();
  }
  return wsdl;
}

// soap->fget: called by soap_begin_serve for an HTTP GET. Serves "?wsdl" (any path); 404 otherwise.
int TimeService::http_get(struct soap* soap) {
  const char* query = std::strchr(soap->path, '?');
  if (query == nullptr || strcasecmp(query, "?wsdl") != 0) return 404;
  // soap->endpoint is "http://" + the Host header + path; keep only the host[:port].
  std::string host = soap->endpoint;
  if (host.rfind("http://", 0) == 0) host.erase(0, 7);
  host = host.substr(0, host.find('/'));
  // soap->user, when set (TimeServer sets it), points at the server's own URL: the fallback location.
  const auto* own_url = static_cast<const std::string*>(soap->user);
  const std::string body = wsdl_for(host, own_url ? *own_url : std::string(kWsdlDefaultLocation));
  // Buffer the whole response (SOAP_IO_STORE) so the engine sends Content-Length and keeps the connection.
  const soap_mode saved = soap->omode;
  soap->omode = (soap->omode & ~SOAP_IO) | SOAP_IO_STORE;
  soap->http_content = "text/xml; charset=utf-8";
  int rc = soap_response(soap, SOAP_FILE);
  if (rc == SOAP_OK) rc = soap_send_raw(soap, body.data(), body.size());
  if (rc == SOAP_OK) rc = soap_end_send(soap);
  soap->omode = saved;
  return rc;
}

}  // namespace zshare::timesvc
