// Command testmod is the general-purpose WASI test module of krustlet-go. It
// is built with GOOS=wasip1 GOARCH=wasm (see test/framework/wasmbuild) and
// runs the actions named by its arguments, in order:
//
//	echo TEXT               print TEXT and a newline on stdout
//	stderr TEXT             print TEXT and a newline on stderr
//	env NAME                print the value of NAME (empty if unset)
//	assert-env NAME=VALUE   exit 10 unless NAME has VALUE
//	assert-file PATH TEXT   exit 12 unless PATH holds exactly TEXT
//	read PATH               print the content of PATH
//	write PATH TEXT         write TEXT to PATH; exit 11 with the error on stderr if it fails
//	ls DIR                  print the names in DIR, one a line
//	stat PATH               print the permission bits of PATH in octal
//	cwd                     print the working directory
//	args                    print argv, one argument a line
//	sleep DURATION          sleep (a Go duration, e.g. 1s or 1h)
//	spin DURATION|forever   burn CPU without making a system call
//	alloc MiB               allocate and touch MiB mebibytes, 1 MiB at a time, and keep them
//	alloc-once MiB          the same in one allocation
//	loop MILLIONS           a fixed amount of computation, MILLIONS million iterations
//	exit CODE               exit with CODE
//	trap                    perform an out-of-bounds memory access: a real Wasm trap
//	panic                   a Go panic (exit code 2)
//
// Any failure of an action other than those above prints the error on
// stderr and exits 1; an unknown action exits 64.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// kept holds what alloc allocated so that it stays live.
var kept [][]byte

// sink keeps spin's loop from being optimised away.
var sink uint64

func main() {
	args := os.Args[1:]
	for len(args) > 0 {
		action := args[0]
		n, ok := arity[action]
		if !ok {
			fmt.Fprintf(os.Stderr, "testmod: unknown action %q\n", action)
			os.Exit(64)
		}
		if len(args) < 1+n {
			fmt.Fprintf(os.Stderr, "testmod: %s needs %d argument(s)\n", action, n)
			os.Exit(64)
		}
		run(action, args[1:1+n])
		args = args[1+n:]
	}
}

var arity = map[string]int{
	"echo": 1, "stderr": 1, "env": 1, "assert-env": 1, "assert-file": 2,
	"read": 1, "write": 2, "ls": 1, "stat": 1, "cwd": 0, "args": 0,
	"sleep": 1, "spin": 1, "alloc": 1, "alloc-once": 1, "loop": 1, "exit": 1, "trap": 0, "panic": 0,
}

func run(action string, a []string) {
	switch action {
	case "echo":
		fmt.Println(a[0])
	case "stderr":
		fmt.Fprintln(os.Stderr, a[0])
	case "env":
		fmt.Println(os.Getenv(a[0]))
	case "assert-env":
		name, want, _ := strings.Cut(a[0], "=")
		if got, ok := os.LookupEnv(name); !ok || got != want {
			fmt.Fprintf(os.Stderr, "testmod: %s=%q (set: %v), want %q\n", name, got, ok, want)
			os.Exit(10)
		}
	case "assert-file":
		b, err := os.ReadFile(a[0])
		if err != nil || string(b) != a[1] {
			fmt.Fprintf(os.Stderr, "testmod: %s holds %q (%v), want %q\n", a[0], b, err, a[1])
			os.Exit(12)
		}
	case "read":
		b, err := os.ReadFile(a[0])
		check(err)
		os.Stdout.Write(b)
	case "write":
		if err := os.WriteFile(a[0], []byte(a[1]), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "testmod: %v\n", err)
			os.Exit(11)
		}
	case "ls":
		entries, err := os.ReadDir(a[0])
		check(err)
		for _, e := range entries {
			fmt.Println(e.Name())
		}
	case "stat":
		fi, err := os.Stat(a[0])
		check(err)
		fmt.Printf("%o\n", fi.Mode().Perm())
	case "cwd":
		wd, err := os.Getwd()
		check(err)
		fmt.Println(wd)
	case "args":
		for _, arg := range os.Args {
			fmt.Println(arg)
		}
	case "sleep":
		d, err := time.ParseDuration(a[0])
		check(err)
		time.Sleep(d)
	case "spin":
		spin(a[0])
	case "alloc":
		mib, err := strconv.Atoi(a[0])
		check(err)
		for range mib {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			kept = append(kept, b)
		}
	case "alloc-once":
		mib, err := strconv.Atoi(a[0])
		check(err)
		b := make([]byte, mib<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		kept = append(kept, b)
	case "loop":
		n, err := strconv.Atoi(a[0])
		check(err)
		for i := uint64(0); i < uint64(n)*1_000_000; i++ {
			sink += i ^ sink>>3
		}
	case "exit":
		code, err := strconv.Atoi(a[0])
		check(err)
		os.Exit(code)
	case "trap":
		// A load far beyond the linear memory: Go checks only nil
		// pointers, so this reaches the engine as a Wasm trap.
		var x byte
		p := (*byte)(unsafe.Add(unsafe.Pointer(&x), 0xF000_0000))
		fmt.Println(*p)
	case "panic":
		panic("testmod: panic requested")
	}
}

func spin(arg string) {
	if arg == "forever" {
		for i := uint64(0); ; i++ {
			sink += i
		}
	}
	d, err := time.ParseDuration(arg)
	check(err)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for i := uint64(0); i < 1<<20; i++ {
			sink += i
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "testmod: %v\n", err)
		os.Exit(1)
	}
}
