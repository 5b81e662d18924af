package main

import (
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

//go:embed hello.wat
var helloWAT string

// writeHelloModule compiles hello.wat and writes it under dir.
func writeHelloModule(dir string) (string, error) {
	wasm, err := wasmtime.Wat2Wasm(helloWAT)
	if err != nil {
		return "", fmt.Errorf("compiling hello.wat: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "hello.wasm")
	return path, os.WriteFile(path, wasm, 0o644)
}

// freshCopy writes a copy of the module at src under dir with a custom
// section of random bytes appended: the same code, a digest no node has
// seen, so the first pod that runs it pays for the compile.
func freshCopy(src, dir, name string) (string, int, error) {
	wasm, err := os.ReadFile(src)
	if err != nil {
		return "", 0, err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", 0, err
	}
	out := append(wasm, customSection("krustlet-bench", nonce)...)
	path := filepath.Join(dir, name+"-"+hex.EncodeToString(nonce[:4])+".wasm")
	return path, len(out), os.WriteFile(path, out, 0o644)
}

// customSection encodes a WebAssembly custom section (id 0): its size,
// then the name as a vector of bytes, then the payload.
func customSection(name string, payload []byte) []byte {
	body := append(uleb128(uint32(len(name))), name...)
	body = append(body, payload...)
	return append(append([]byte{0}, uleb128(uint32(len(body)))...), body...)
}

func uleb128(v uint32) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b |= 0x80
		}
		out = append(out, b)
		if v == 0 {
			return out
		}
	}
}
