// Package e2e holds the end-to-end tests of krustlet-go. They run against a
// real control plane on loopback (test/framework/controlplane), started once
// for the package by TestMain, and are skipped with -short.
package e2e
