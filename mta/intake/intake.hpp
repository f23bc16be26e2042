// Intake: what SMTP and HTTP submission share between "the client gave us a
// message" and "it is on disk".
//
// prepare() resolves the configuration set (X-SES-CONFIGURATION-SET or its
// alias X-Configuration-Set, else the authenticated user's set, else the
// default), parses X-SES-MESSAGE-TAGS and X-SES-LIST-MANAGEMENT-OPTIONS,
// removes those headers, and adds our
// trace headers: Received, X-MTA-Message-ID, and Message-ID and Date when
// the submitter gave none. It refuses (with the SMTP reply to give) an
// unknown configuration set or malformed tags. Pure: no I/O, so it is
// unit-tested on its own; the caller then hands the result to
// queue::Spool::accept().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mta/config/config.hpp"
#include "mta/protocol/reply.hpp"
#include "mta/queue/spool.hpp"

namespace mta::intake {

struct Submission {
  std::string mail_from;
  std::vector<std::string> recipients;
  std::string body;  // the message as received, CRLF line ends
  std::string client_ip;
  std::string helo;       // SMTP only
  std::string auth_user;  // "" when not authenticated
  std::string protocol;   // "smtp" | "http"
  bool tls = false;
  bool eight_bit = false;
  // HTTP callers pass these directly (ConfigurationSetName, EmailTags); they
  // take precedence over the headers.
  std::optional<std::string> configuration_set;
  std::vector<std::pair<std::string, std::string>> tags;
  // SES v2 ListManagementOptions {ContactListName, TopicName}; takes
  // precedence over the X-SES-LIST-MANAGEMENT-OPTIONS header.
  std::optional<std::pair<std::string, std::string>> list_management;
};

// X-SES-LIST-MANAGEMENT-OPTIONS: "contactList" or "contactList; topic=name"
// (SES's syntax). Names: 1..128 of letters, digits, '_' and '-'.
struct ListOptions {
  std::string list, topic;
  std::optional<std::string> error;
};
ListOptions parse_list_options(std::string_view value);
bool valid_list_name(std::string_view name);

struct Prepared {
  queue::Message message;
  std::string body;
};

struct Rejected {
  protocol::Reply reply;
  std::string reason;  // metrics label: unknown_configuration_set, bad_tags
};

std::variant<Prepared, Rejected> prepare(const config::Config& cfg, Submission sub,
                                         const core::MessageId& id, int64_t now_ms);

}  // namespace mta::intake
