;; trap: a WASI command that writes a line on stdout, then executes
;; `unreachable` two calls deep, so the trap has a short Wasm backtrace.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "about to trap\n")
  (func $boom (unreachable))
  (func $work (call $boom))
  (func (export "_start")
    ;; one iovec at 0: buf=16, len=14; nwritten at 8
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 14))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $work)))
