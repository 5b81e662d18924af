package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at link time; see the package documentation.
var (
	gitVersion = ""
	gitCommit  = ""
	buildDate  = ""
)

// Info describes one build of krustlet.
type Info struct {
	GitVersion string `json:"gitVersion"`
	GitCommit  string `json:"gitCommit"`
	BuildDate  string `json:"buildDate"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
}

// Get returns the version of the running binary.
func Get() Info {
	info := Info{
		GitVersion: gitVersion,
		GitCommit:  gitCommit,
		BuildDate:  buildDate,
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info.GitVersion == "" {
		info.GitVersion = "v0.0.0-dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.GitVersion = bi.Main.Version
		}
	}
	if info.GitCommit == "" {
		info.GitCommit = "unknown"
	}
	if info.BuildDate == "" {
		info.BuildDate = "unknown"
	}
	return info
}

// String returns the version alone, as the Node's nodeInfo.kubeletVersion
// reports it.
func (i Info) String() string { return i.GitVersion }

// Long returns a one-line human readable description of the build.
func (i Info) Long() string {
	return fmt.Sprintf("krustlet %s (commit %s, built %s, %s, %s)", i.GitVersion, i.GitCommit, i.BuildDate, i.GoVersion, i.Platform)
}
