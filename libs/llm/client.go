package llm

import (
	"net/http"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Option customises a Chat or an Embedder.
type Option func(*options)

type options struct {
	httpClient *http.Client
	clock      Clock
}

// WithHTTPClient sends requests through hc (proxies, TLS settings, tests).
// Do not set a client Timeout: Config.Timeout bounds each attempt, and a
// client timeout would also cut streams short.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.httpClient = hc }
}

// WithClock replaces the real clock used by rate budgets and retry waits.
func WithClock(c Clock) Option {
	return func(o *options) { o.clock = c }
}

func buildOptions(maxConcurrency int, opts []Option) options {
	o := options{clock: realClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.httpClient == nil {
		o.httpClient = defaultHTTPClient(maxConcurrency)
	}
	return o
}

// defaultHTTPClient keeps as many idle connections to the provider as calls
// may run at once; http.DefaultTransport keeps two per host, which makes a
// busy provider open and close connections all the time.
func defaultHTTPClient(maxConcurrency int) *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	t.MaxIdleConnsPerHost = max(maxConcurrency, t.MaxIdleConnsPerHost)
	t.MaxIdleConns = max(maxConcurrency, t.MaxIdleConns)
	return &http.Client{Transport: t}
}

// newOpenAIClient builds an openai-go client for one provider. openai-go
// reads OPENAI_* variables from the environment; configuration here comes
// from Config alone, so base URL and key are always set explicitly (an empty
// key sends no Authorization header, for Ollama and llama.cpp) and the
// organisation and project headers the environment may add are removed.
func newOpenAIClient(baseURL, apiKey string, hc *http.Client) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(baseURL),
		option.WithAPIKey(apiKey),
		option.WithHTTPClient(hc),
		option.WithHeaderDel("OpenAI-Organization"),
		option.WithHeaderDel("OpenAI-Project"),
		option.WithMaxRetries(0),
	)
}
