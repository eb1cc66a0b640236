// time_service.hpp: the ZshareTime SOAP operations over the gSOAP service class soapcpp2 generates
// (C++ namespace ztsrv), plus the HTTP GET hook that serves the WSDL. One instance per thread.
#pragma once

#include <string>

#include "ztsrvZshareTimeService.h"

namespace zshare::timesvc {

// Compiled WITH_PURE_VIRTUAL: the compiler checks that every operation in schemas/timesvc.h is here.
class TimeService final : public ztsrv::ZshareTimeService {
 public:
  TimeService();
  ~TimeService() override = default;
  TimeService(const TimeService&) = delete;
  TimeService& operator=(const TimeService&) = delete;

  // gSOAP's soap_copy pattern: a new context with this one's settings (modes, timeouts, hooks), holding
  // neither the listening socket nor a connection.
  TimeService* copy() override;

  int now(ztsrv::zt__nowResponse& response) override;
  int getIso8601(std::string& iso8601) override;
  int getEpochMs(LONG64& epochMs) override;
  int getSeeds(std::string& seeds) override;

  // The WSDL with <soap:address location> set to http://<host> (the request's Host header, else fallback).
  static std::string wsdl_for(const std::string& host, const std::string& fallback_location);

 private:
  static int http_get(struct soap* soap);
};

}  // namespace zshare::timesvc
