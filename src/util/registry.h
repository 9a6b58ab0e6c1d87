// A process-wide list of registered entries (model families, key maps,
// release folders): the built-in ones first, then those added at run time.
// Entries never move once added (a deque), and access is serialised.
#pragma once
#include <deque>
#include <mutex>
#include <vector>

namespace kino {

template <typename T>
class Registry {
 public:
  template <typename Builtin>
  explicit Registry(Builtin builtin) : entries_(builtin.begin(), builtin.end()) {}

  void add(T entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_back(std::move(entry));
  }
  // The first entry `pred` accepts, or nullptr.
  template <typename Pred>
  const T* find(Pred pred) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const T& e : entries_)
      if (pred(e)) return &e;
    return nullptr;
  }
  std::vector<T> all() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {entries_.begin(), entries_.end()};
  }

 private:
  mutable std::mutex mutex_;
  std::deque<T> entries_;
};

}  // namespace kino
