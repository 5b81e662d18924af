package cri

import (
	"context"
	"fmt"
	"net/url"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Exec prepares an exec session in the runtime's streaming server.
func (p *Provider) Exec(ctx context.Context, req provider.ExecRequest) (*url.URL, error) {
	id, err := p.containerOf(ctx, req.ContainerID)
	if err != nil {
		return nil, err
	}
	resp, err := p.runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: req.Cmd,
		Tty: req.TTY, Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr && !req.TTY})
	if err != nil {
		return nil, err
	}
	return url.Parse(resp.Url)
}

// Attach prepares an attach session.
func (p *Provider) Attach(ctx context.Context, req provider.AttachRequest) (*url.URL, error) {
	id, err := p.containerOf(ctx, req.ContainerID)
	if err != nil {
		return nil, err
	}
	resp, err := p.runtime.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id,
		Tty: req.TTY, Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr && !req.TTY})
	if err != nil {
		return nil, err
	}
	return url.Parse(resp.Url)
}

// PortForward prepares a port-forward session into the pod's sandbox.
func (p *Provider) PortForward(ctx context.Context, req provider.PortForwardRequest) (*url.URL, error) {
	id, err := p.readySandbox(ctx, req.PodUID)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("pod %s has no ready sandbox", req.PodUID)
	}
	resp, err := p.runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: id, Port: req.Ports})
	if err != nil {
		return nil, err
	}
	return url.Parse(resp.Url)
}
