// Feedback records: what a Complaint event needs of a message after the
// message itself has left the spool.
//
// A complaint arrives days after delivery, when the message, its body and
// envelopes are gone. So while feedback addresses are configured, the
// acceptance batch also writes a compact copy of the message's metadata
// (envelope, configuration set, tags, source IP and the header fields that
// SES's commonHeaders uses) under the message id, plus an index from its
// Message-ID header, for reports that lost our X-MTA-Message-ID. The daemon
// trims records older than feedback.retention.
//
// Keys (column family "feedback"; ids are time-ordered, so a trim is one
// range scan from the start):
//   'm' id(16)                          -> queue::encode(compact message)
//   'i' Message-ID '\0' id(16)          -> ""   (newest id last)
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "mta/core/id.hpp"
#include "mta/core/result.hpp"
#include "mta/queue/spool.hpp"

namespace mta::store {
class Batch;
class Store;
}  // namespace mta::store

namespace mta::feedback {

// The message with only From, To, Cc, Subject, Date, Message-ID and
// X-MTA-Message-ID kept of its header (headers_truncated set when others
// were dropped).
queue::Message compact(const queue::Message& m);

// Adds the record of a freshly accepted message to its acceptance batch.
void add_record(store::Batch& b, const queue::Message& m);

core::Result<std::optional<queue::Message>> find_record(const store::Store& s,
                                                        const core::MessageId& id);
// The newest message whose Message-ID header is `message_id` (compared
// without the angle brackets and surrounding space).
core::Result<std::optional<core::MessageId>> find_by_message_id(const store::Store& s,
                                                                std::string_view message_id);

// Deletes the records (and their index entries) of messages accepted before
// `cutoff_ms`, at most `limit` per call; returns how many records.
core::Result<uint64_t> trim(store::Store& s, int64_t cutoff_ms, uint64_t limit = 50000);

}  // namespace mta::feedback
