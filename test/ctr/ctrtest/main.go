// Command ctrtest is the general-purpose Linux test program of krustlet-go,
// the container counterpart of test/wasm/testmod. It is built statically
// (CGO_ENABLED=0) into a one-layer image by test/framework/images, whose
// entrypoint it is, and runs the actions named by its arguments, in order:
//
//	echo TEXT               print TEXT and a newline on stdout
//	stderr TEXT             print TEXT and a newline on stderr
//	env NAME                print the value of NAME (empty if unset)
//	cat FILE                print the content of FILE
//	write FILE TEXT         write TEXT to FILE; exit 11 with the error on stderr if it fails
//	ls DIR                  print the names in DIR, one a line
//	cwd                     print the working directory
//	id                      print the user and group IDs, "uid=U gid=G"
//	hostname                print the host name
//	sleep DURATION|forever  sleep (a Go duration, e.g. 1s or 1h)
//	spin DURATION|forever   burn CPU
//	alloc MiB               allocate and touch MiB mebibytes, 1 MiB at a time, and keep them
//	exit CODE               exit with CODE
//	trap-term CODE DELAY    from now on, on SIGTERM print "SIGTERM" on stdout, wait DELAY, exit CODE
//	serve PORT              serve HTTP on PORT of every address of the container, answering
//	                        "HOSTNAME PATH\n" (the host name is the pod's name in a pod); never returns
//	http-get URL            GET URL and print the body; exit 1 unless the status is 200
//
// Any failure of an action prints the error on stderr and exits 1; an
// unknown action exits 64. With no arguments the image runs "serve 8080".
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// kept holds what alloc allocated so that it stays live.
var kept [][]byte

var arity = map[string]int{
	"echo": 1, "stderr": 1, "env": 1, "cat": 1, "write": 2, "ls": 1, "cwd": 0, "id": 0, "hostname": 0,
	"sleep": 1, "spin": 1, "alloc": 1, "exit": 1, "trap-term": 2, "serve": 1, "http-get": 1,
}

func main() {
	args := os.Args[1:]
	for len(args) > 0 {
		action := args[0]
		n, ok := arity[action]
		if !ok {
			fmt.Fprintf(os.Stderr, "ctrtest: unknown action %q\n", action)
			os.Exit(64)
		}
		if len(args) < 1+n {
			fmt.Fprintf(os.Stderr, "ctrtest: %s needs %d argument(s)\n", action, n)
			os.Exit(64)
		}
		run(action, args[1:1+n])
		args = args[1+n:]
	}
}

func run(action string, a []string) {
	switch action {
	case "echo":
		fmt.Println(a[0])
	case "stderr":
		fmt.Fprintln(os.Stderr, a[0])
	case "env":
		fmt.Println(os.Getenv(a[0]))
	case "cat":
		b, err := os.ReadFile(a[0])
		check(err)
		os.Stdout.Write(b)
	case "write":
		if err := os.WriteFile(a[0], []byte(a[1]), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "ctrtest: %v\n", err)
			os.Exit(11)
		}
	case "ls":
		entries, err := os.ReadDir(a[0])
		check(err)
		for _, e := range entries {
			fmt.Println(e.Name())
		}
	case "cwd":
		wd, err := os.Getwd()
		check(err)
		fmt.Println(wd)
	case "id":
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	case "hostname":
		h, err := os.Hostname()
		check(err)
		fmt.Println(h)
	case "sleep":
		if a[0] == "forever" {
			// Not select{}: with no other goroutine that is a deadlock.
			for {
				time.Sleep(time.Hour)
			}
		}
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
	case "exit":
		code, err := strconv.Atoi(a[0])
		check(err)
		os.Exit(code)
	case "trap-term":
		code, err := strconv.Atoi(a[0])
		check(err)
		delay, err := time.ParseDuration(a[1])
		check(err)
		trapTerm(code, delay)
	case "serve":
		serve(a[0])
	case "http-get":
		httpGet(a[0])
	}
}

func spin(arg string) {
	var sum uint64
	if arg == "forever" {
		for i := uint64(0); ; i++ {
			sum += i
		}
	}
	d, err := time.ParseDuration(arg)
	check(err)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for i := uint64(0); i < 1<<20; i++ {
			sum += i
		}
	}
	// Used, so that the loop is not optimised away.
	fmt.Fprint(io.Discard, sum)
}

func trapTerm(code int, delay time.Duration) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Println("SIGTERM")
		time.Sleep(delay)
		os.Exit(code)
	}()
}

func serve(port string) {
	host, err := os.Hostname()
	check(err)
	l, err := net.Listen("tcp", ":"+port)
	check(err)
	fmt.Printf("serving on %s\n", l.Addr())
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s\n", host, r.URL.Path)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	check(srv.Serve(l))
}

func httpGet(url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	check(err)
	resp, err := http.DefaultClient.Do(req)
	check(err)
	defer resp.Body.Close()
	_, err = io.Copy(os.Stdout, resp.Body)
	check(err)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "ctrtest: GET %s: %s\n", url, resp.Status)
		os.Exit(1)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "ctrtest: %v\n", err)
		os.Exit(1)
	}
}
