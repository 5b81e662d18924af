package main

import (
	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/wasmtime"
)

// The providers built into this binary, by the name --provider takes.
func init() {
	provider.Register("wasmtime", func(o provider.Options) (provider.Provider, error) {
		return wasmtime.New(wasmtime.Options{
			DataDir:           o.DataDir,
			AllowLocalModules: o.AllowLocalModules,
		})
	})
}
