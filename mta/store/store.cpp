#include "mta/store/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "mta/core/id.hpp"
#include "mta/metrics/metrics.hpp"

namespace mta::store {

const char* to_string(Cf cf) {
  switch (cf) {
    case Cf::kMessages:
      return "messages";
    case Cf::kBodies:
      return "bodies";
    case Cf::kEnvelopes:
      return "envelopes";
    case Cf::kSchedule:
      return "schedule";
    case Cf::kEvents:
      return "events";
    case Cf::kMeta:
      return "meta";
    case Cf::kSuppression:
      return "suppression";
    case Cf::kFeedback:
      return "feedback";
    case Cf::kWebhooks:
      return "webhooks";
  }
  return "?";
}

size_t Batch::bytes() const {
  size_t n = 0;
  for (auto& op : ops_) n += op.key.size() + op.value.size();
  return n;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}
uint64_t get_u64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

namespace {

rocksdb::Slice slice(std::string_view s) {
  return {s.data(), s.size()};
}

core::Error error_of(const char* what, const rocksdb::Status& s) {
  return core::make_error(std::string(what) + ": " + s.ToString());
}

rocksdb::ColumnFamilyOptions cf_options(Cf cf) {
  rocksdb::ColumnFamilyOptions o;
  o.write_buffer_size = 32 << 20;
  switch (cf) {
    case Cf::kBodies:
      // Bodies are written once and deleted once delivered: keeping them in
      // blob files spares them from being rewritten by every compaction.
      o.enable_blob_files = true;
      o.min_blob_size = 1024;
      o.enable_blob_garbage_collection = true;
      break;
    case Cf::kSchedule:
    case Cf::kEnvelopes:
    case Cf::kEvents:
    case Cf::kFeedback:  // trimmed from the oldest end
    case Cf::kWebhooks:  // queues: deleted once published
      // Queue-like column families: most keys are deleted soon after being
      // written. Compact files dense with tombstones so range scans over
      // the due index stay fast.
      o.table_properties_collector_factories.emplace_back(
          rocksdb::NewCompactOnDeletionCollectorFactory(10000, 5000));
      break;
    default:
      break;
  }
  return o;
}

}  // namespace

struct Store::Impl {
  static constexpr uint64_t kReserveBytes = 16ull << 20;
  std::string dir;
  bool disk_full_logged = false;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  bool read_only = false;

  // Commit queue.
  struct Pending {
    Batch batch;
    Done done;
    bool sync;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> queue;
  bool stopping = false;
  bool last_failed = false;
  std::thread thread;

  metrics::Histogram commit_seconds =
      metrics::histogram("mta_spool_commit_seconds", "Time of one synced group commit to the spool",
                         metrics::latency_buckets());
  metrics::Histogram group_size =
      metrics::histogram("mta_spool_commit_group_size", "Batches folded into one synced write",
                         {1, 2, 4, 8, 16, 32, 64, 128, 256});
  metrics::Counter commit_errors =
      metrics::counter("mta_spool_commit_errors_total", "Failed group commits (disk full, I/O)");

  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return cfs[1 + static_cast<int>(c)]; }

  void run() {
    std::vector<Pending> group;
    for (;;) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping and drained
        while (!queue.empty()) {
          group.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      rocksdb::WriteBatch wb;
      bool sync = false;
      for (auto& p : group) sync = sync || p.sync;
      for (auto& p : group)
        for (auto& op : p.batch.ops_) {
          if (op.sequenced) op.key = std::string(core::next_message_id().key());
          if (op.del)
            wb.Delete(cf(op.cf), slice(op.key));
          else
            wb.Put(cf(op.cf), slice(op.key), slice(op.value));
        }
      core::Status status = write(wb, sync);
      for (auto& p : group)
        if (p.done) p.done(status);
      group_size.observe(static_cast<double>(group.size()));
      group.clear();
    }
  }

  // RocksDB 7.8 (as Debian builds it, with assertions on) aborts the
  // process on the write after a failed WAL write (fixed upstream in 9.x).
  // So a full disk must never reach the WAL: refuse the batch while free
  // space is under the batch (twice, for the memtable flush that follows)
  // plus a reserve.
  bool room_for(size_t bytes) const {
    struct statvfs st {};
    if (statvfs(dir.c_str(), &st) != 0) return true;  // cannot tell: let RocksDB try
    uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
    return free_bytes >= kReserveBytes + 2 * static_cast<uint64_t>(bytes);
  }

  core::Status write(rocksdb::WriteBatch& wb, bool sync) {
    if (!room_for(wb.GetDataSize())) {
      commit_errors.inc();
      if (!disk_full_logged) spdlog::error("store=spool event=disk_full dir={}", dir);
      disk_full_logged = true;
      return core::make_error("spool disk is full");
    }
    if (disk_full_logged) spdlog::info("store=spool event=disk_space_back dir={}", dir);
    disk_full_logged = false;
    if (last_failed) {
      // The previous write left RocksDB in its background-error state; try
      // to leave it (works once the disk has room again).
      rocksdb::Status r = db->Resume();
      if (!r.ok()) {
        commit_errors.inc();
        return error_of("spool write refused (resume failed)", r);
      }
      spdlog::info("store=spool event=resumed");
      last_failed = false;
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto start = std::chrono::steady_clock::now();
    rocksdb::Status s = db->Write(wo, &wb);
    if (sync)
      commit_seconds.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!s.ok()) {
      last_failed = true;
      commit_errors.inc();
      spdlog::error("store=spool event=write_failed error=\"{}\"", s.ToString());
      return error_of("spool write failed", s);
    }
    return core::Ok{};
  }
};

Store::Store(std::string dir, std::unique_ptr<Impl> impl)
    : dir_(std::move(dir)), impl_(std::move(impl)) {}

core::Result<std::unique_ptr<Store>> Store::open(const std::string& dir, Mode mode) {
  auto impl = std::make_unique<Impl>();
  impl->read_only = mode == Mode::kReadOnly;
  impl->dir = dir;
  std::error_code ec;
  if (mode == Mode::kReadWrite) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return core::make_error("cannot create spool directory " + dir + ": " + ec.message());
  }
  rocksdb::DBOptions opts;
  opts.create_if_missing = mode == Mode::kReadWrite;
  opts.create_missing_column_families = mode == Mode::kReadWrite;
  opts.max_background_jobs = 2;
  opts.keep_log_file_num = 5;
  opts.max_total_wal_size = 256 << 20;
  // A write stall must not freeze intake forever; RocksDB still protects
  // itself, we just prefer an error to an unbounded wait.
  opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (int i = 0; i < kCfCount; ++i)
    descs.emplace_back(to_string(static_cast<Cf>(i)), cf_options(static_cast<Cf>(i)));

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (mode == Mode::kReadOnly) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT"))
      return core::make_error("no spool in " + dir);
    // A read-only open cannot create column families: open the ones there
    // are; the missing ones (a spool of an older version) read as empty.
    std::vector<bool> present(descs.size(), true);
    std::vector<std::string> names;
    if (rocksdb::DB::ListColumnFamilies(opts, dir, &names).ok()) {
      std::vector<rocksdb::ColumnFamilyDescriptor> existing;
      for (size_t i = 0; i < descs.size(); ++i) {
        present[i] = std::find(names.begin(), names.end(), descs[i].name) != names.end();
        if (present[i]) existing.push_back(descs[i]);
      }
      descs = std::move(existing);
    }
    s = rocksdb::DB::OpenForReadOnly(opts, dir, descs, &handles, &raw);
    if (s.ok()) {
      std::vector<rocksdb::ColumnFamilyHandle*> all;
      size_t next = 0;
      for (bool p : present) all.push_back(p ? handles[next++] : nullptr);
      handles = std::move(all);
    }
  } else {
    s = rocksdb::DB::Open(opts, dir, descs, &handles, &raw);
  }
  if (!s.ok()) return error_of(("cannot open spool " + dir).c_str(), s);
  impl->db.reset(raw);
  // handles[0] is the default family, which we do not use; cf() skips it.
  impl->cfs = std::move(handles);

  std::unique_ptr<Store> store(new Store(dir, std::move(impl)));
  if (mode == Mode::kReadWrite) {
    Impl* p = store->impl_.get();
    p->thread = std::thread([p] { p->run(); });
  }
  return store;
}

Store::~Store() {
  if (impl_->thread.joinable()) {
    {
      std::lock_guard lock(impl_->mu);
      impl_->stopping = true;
    }
    impl_->cv.notify_one();
    impl_->thread.join();
  }
  for (auto* h : impl_->cfs)
    if (h) impl_->db->DestroyColumnFamilyHandle(h);
  if (!impl_->read_only) {
    rocksdb::Status s = impl_->db->Close();
    if (!s.ok()) spdlog::error("store=spool event=close_failed error=\"{}\"", s.ToString());
  }
}

void Store::commit(Batch batch, Done done, bool sync) {
  if (impl_->read_only) {
    if (done) done(core::make_error("spool is open read-only"));
    return;
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->queue.push_back({std::move(batch), std::move(done), sync});
  }
  impl_->cv.notify_one();
}

core::Status Store::commit_sync(Batch batch, bool sync) {
  std::promise<core::Status> p;
  auto f = p.get_future();
  commit(
      std::move(batch), [&p](core::Status s) { p.set_value(std::move(s)); }, sync);
  return f.get();
}

core::Result<std::optional<std::string>> Store::get(Cf cf, std::string_view key) const {
  if (!impl_->cf(cf)) return std::optional<std::string>();  // missing family (read-only)
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(cf), slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return error_of("spool read failed", s);
  return std::optional<std::string>(std::move(value));
}

core::Status Store::scan(Cf cf, std::string_view from, std::string_view to,
                         const std::function<bool(std::string_view, std::string_view)>& fn) const {
  if (!impl_->cf(cf)) return core::Ok{};  // missing family (read-only)
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper = slice(to);
  if (!to.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(cf)));
  for (it->Seek(slice(from)); it->Valid(); it->Next()) {
    auto k = it->key();
    auto v = it->value();
    if (!fn({k.data(), k.size()}, {v.data(), v.size()})) break;
  }
  if (!it->status().ok()) return error_of("spool scan failed", it->status());
  return core::Ok{};
}

core::Result<uint64_t> Store::count(Cf cf, std::string_view from, std::string_view to) const {
  uint64_t n = 0;
  if (!impl_->cf(cf)) return n;  // missing family (read-only)
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper = slice(to);
  if (!to.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(cf)));
  for (it->Seek(slice(from)); it->Valid(); it->Next()) ++n;
  if (!it->status().ok()) return error_of("spool scan failed", it->status());
  return n;
}

}  // namespace mta::store
