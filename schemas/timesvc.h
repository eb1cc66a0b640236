// timesvc.h: the gSOAP header of zshare's time service (service ZshareTime, namespace prefix zt).
// soapcpp2 makes the server and client stubs and schemas/timesvc.wsdl from it; edit here, never the WSDL.
//
// The contract (document/literal SOAP 1.1 over HTTP POST; `GET /?wsdl` returns the WSDL):
//   now         -> nowResponse { iso8601, epochMs, seeds }: all three forms from ONE reading of the clock,
//                  so they always agree. This is the operation peers call to stamp their requests.
//   getIso8601  -> iso8601   "YYYY-MM-DDTHH:MM:SS.mmmZ"  (UTC, always milliseconds, always 'Z')
//   getEpochMs  -> epochMs   xsd:long, milliseconds since 1970-01-01T00:00:00Z
//   getSeeds    -> seeds     "DD/MM/YYYY HH:MM:SS"        (UTC, the seeds' format, whole seconds)
// All operations take no input, are read-only and never fail except on transport errors.
// Compatibility: add operations or optional fields; never rename, retype or remove one.

//gsoap zt service name: ZshareTime
//gsoap zt service namespace: urn:zshare:time:1
//gsoap zt service location: http://127.0.0.1:8080
//gsoap zt service style: document
//gsoap zt service encoding: literal
//gsoap zt service documentation: zshare time service: the current UTC time, as ISO 8601 with milliseconds, as Unix epoch milliseconds, and in the seeds' DD/MM/YYYY HH:MM:SS form.
//gsoap zt schema namespace: urn:zshare:time:1
//gsoap zt schema form: qualified

typedef long long xsd__long;

//gsoap zt service method-documentation: now The current UTC time in all three forms, from one reading of the clock.
struct zt__nowResponse {
  std::string iso8601 1;  // YYYY-MM-DDTHH:MM:SS.mmmZ
  xsd__long epochMs 1;    // milliseconds since the Unix epoch
  std::string seeds 1;    // DD/MM/YYYY HH:MM:SS
};
int zt__now(struct zt__nowResponse &response);

//gsoap zt service method-documentation: getIso8601 The current UTC time as ISO 8601 with milliseconds: YYYY-MM-DDTHH:MM:SS.mmmZ.
int zt__getIso8601(std::string &iso8601);

//gsoap zt service method-documentation: getEpochMs The current time as milliseconds since the Unix epoch (1970-01-01T00:00:00Z).
int zt__getEpochMs(xsd__long &epochMs);

//gsoap zt service method-documentation: getSeeds The current UTC time in the seeds' form: DD/MM/YYYY HH:MM:SS.
int zt__getSeeds(std::string &seeds);
