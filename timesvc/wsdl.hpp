// wsdl.hpp: the service's WSDL, as soapcpp2 generated it from schemas/timesvc.h during this build
// (embedded by embed_text.cmake; a CTest test keeps schemas/timesvc.wsdl equal to it).
#pragma once

#include <string_view>

namespace zshare::timesvc {

std::string_view generated_wsdl();

// The endpoint soapcpp2 wrote into <soap:address location="...">, replaced when the WSDL is served.
inline constexpr std::string_view kWsdlDefaultLocation = "http://127.0.0.1:8080";

}  // namespace zshare::timesvc
