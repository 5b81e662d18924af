;; hello: the smallest useful WASI command for the benchmarks. It writes
;; "hello" and a newline on stdout and returns from _start, which is exit
;; status 0. The cold/warm scenario appends a custom section to it so that
;; each copy has a digest the node has never seen.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\n")
  (func (export "_start")
    ;; one iovec at 0: buf=16, len=6; nwritten at 8
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
