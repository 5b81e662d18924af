package server

import "k8s.io/apiserver/pkg/authentication/user"

// userInfo adapts the authenticated user to user.Info.
type userInfo struct {
	u interface {
		GetName() string
		GetUID() string
		GetGroups() []string
		GetExtra() map[string][]string
	}
}

var _ user.Info = userInfo{}

func (i userInfo) GetName() string               { return i.u.GetName() }
func (i userInfo) GetUID() string                { return i.u.GetUID() }
func (i userInfo) GetGroups() []string           { return i.u.GetGroups() }
func (i userInfo) GetExtra() map[string][]string { return i.u.GetExtra() }
