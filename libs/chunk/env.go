package chunk

import "github.com/kgraph-dev/kgraph/libs/envconf"

// ReadConfig reads KG_CHUNK_TOKENS and KG_CHUNK_OVERLAP. The extractor cuts
// chunks with it and the edge estimates a job's cost with it, so both read
// it here and cannot disagree on the defaults.
func ReadConfig(env *envconf.Reader) Config {
	return Config{
		MaxTokens:     env.Int("KG_CHUNK_TOKENS", DefaultMaxTokens),
		OverlapTokens: env.Int("KG_CHUNK_OVERLAP", DefaultOverlapTokens),
	}
}
