package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// AuthOptions configure authentication and authorisation.
type AuthOptions struct {
	// ClientCA is the PEM bundle that signs trusted client certificates.
	ClientCA []byte
	// Anonymous lets requests without credentials in as system:anonymous.
	Anonymous bool
	// Webhook authenticates bearer tokens with TokenReview.
	Webhook bool
	// AlwaysAllow skips SubjectAccessReview (--authorization-mode=AlwaysAllow).
	AlwaysAllow bool
	// Client makes the reviews; it authenticates as the node.
	Client kubernetes.Interface
}

// auth is the authenticator and authorizer of the node API.
type auth struct {
	nodeName      string
	authenticator authenticator.Request
	authorizer    authorizer.Authorizer
}

func newAuth(nodeName string, o AuthOptions) (*auth, error) {
	backoff := &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
	cfg := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: o.Anonymous},
		CacheTTL:                 2 * time.Minute,
		TokenAccessReviewTimeout: 10 * time.Second,
		WebhookRetryBackoff:      backoff,
	}
	if o.Webhook {
		cfg.TokenAccessReviewClient = o.Client.AuthenticationV1()
	}
	if len(o.ClientCA) > 0 {
		ca, err := dynamiccertificates.NewStaticCAContent("client-ca-bundle", o.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("loading client CA: %w", err)
		}
		cfg.ClientCertificateCAContentProvider = ca
	}
	authn, _, err := cfg.New()
	if err != nil {
		return nil, fmt.Errorf("building authenticator: %w", err)
	}
	var authz authorizer.Authorizer
	if o.AlwaysAllow {
		authz = authorizerfactory.NewAlwaysAllowAuthorizer()
	} else {
		authz, err = authorizerfactory.DelegatingAuthorizerConfig{
			SubjectAccessReviewClient: o.Client.AuthorizationV1(),
			AllowCacheTTL:             5 * time.Minute,
			DenyCacheTTL:              30 * time.Second,
			WebhookRetryBackoff:       backoff,
		}.New()
		if err != nil {
			return nil, fmt.Errorf("building authorizer: %w", err)
		}
	}
	return &auth{nodeName: nodeName, authenticator: authn, authorizer: authz}, nil
}

// wrap authenticates and authorises every request before h sees it.
func (a *auth) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok, err := a.authenticator.AuthenticateRequest(r)
		if err != nil || !ok {
			if err != nil {
				klog.FromContext(r.Context()).V(3).Info("Unauthenticated node API request", "path", r.URL.Path, "err", err)
			}
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		for _, attrs := range a.attributes(resp.User, r) {
			decision, reason, err := a.authorizer.Authorize(r.Context(), attrs)
			if err != nil {
				klog.FromContext(r.Context()).Error(err, "Authorization error", "user", attrs.GetUser().GetName(), "verb", attrs.GetVerb(), "subresource", attrs.GetSubresource())
				http.Error(w, "authorization error: "+err.Error(), http.StatusInternalServerError)
				return
			}
			if decision == authorizer.DecisionAllow {
				h.ServeHTTP(w, r)
				return
			}
			if reason != "" {
				klog.FromContext(r.Context()).V(3).Info("Node API request denied", "user", attrs.GetUser().GetName(), "reason", reason)
			}
		}
		last := a.attributes(resp.User, r)
		at := last[len(last)-1]
		http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource=%s)",
			at.GetUser().GetName(), at.GetVerb(), at.GetResource(), at.GetSubresource()), http.StatusForbidden)
	})
}

// attributes returns the authorisation checks for a request, most specific
// first; any allowed one admits it (the kubelet's fine-grained checks fall
// back to nodes/proxy).
func (a *auth) attributes(u interface {
	GetName() string
	GetUID() string
	GetGroups() []string
	GetExtra() map[string][]string
}, r *http.Request) []authorizer.Attributes {
	verb := "get"
	switch r.Method {
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	}
	path := r.URL.Path
	var subs []string
	switch {
	case isSubpath(path, "/stats"):
		subs = []string{"stats"}
	case isSubpath(path, "/metrics"):
		subs = []string{"metrics"}
	case isSubpath(path, "/logs"):
		subs = []string{"log"}
	case isSubpath(path, "/pods"):
		subs = []string{"pods", "proxy"}
	case isSubpath(path, "/healthz"):
		subs = []string{"healthz", "proxy"}
	case isSubpath(path, "/configz"):
		subs = []string{"configz", "proxy"}
	default:
		subs = []string{"proxy"}
	}
	out := make([]authorizer.Attributes, 0, len(subs))
	for _, s := range subs {
		out = append(out, authorizer.AttributesRecord{
			User:            userInfo{u},
			Verb:            verb,
			APIGroup:        "",
			APIVersion:      "v1",
			Resource:        "nodes",
			Subresource:     s,
			Name:            a.nodeName,
			ResourceRequest: true,
			Path:            path,
		})
	}
	return out
}

func isSubpath(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
