// Package hashembed computes deterministic embeddings offline, so the system
// runs without an embedding provider (tests, air-gapped installs, first
// start). They capture shared vocabulary, not meaning: texts using the same
// words and word pairs score high, paraphrases do not.
//
// A text becomes lower-cased tokens (runs of Unicode letters, digits and
// marks; every Han, Hiragana and Katakana character on its own, since those
// scripts do not separate words with spaces). Each token and each pair of
// adjacent tokens is a feature; features are hashed with 64-bit FNV-1a into
// dim buckets, the bucket from the hash folded to 32 bits and a ±1 sign from
// the top bit so that collisions cancel out on average instead of piling up. A
// feature seen tf times contributes 1+ln(tf), and the vector is
// L2-normalised.
package hashembed

import (
	"context"
	"fmt"
	"math"
	"strings"
	"unicode"
)

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211

	// pairSeparator joins the tokens of a bigram feature. Tokens never
	// contain it, so "a b" as a pair cannot hash like a single token "ab".
	pairSeparator = 0x1f

	// version is part of Model: change it whenever the output changes, so
	// vectors of different versions are never compared.
	version = "v1"
)

// DefaultDim is the dimension of hashed embeddings when KG_EMBED_DIM is
// unset: the vector-indexer writes and the query service searches with the
// same one, in every host.
const DefaultDim = 256

// Embedder produces unit vectors of a fixed dimension. It is stateless and
// safe for concurrent use.
type Embedder struct {
	dim int
}

// New returns an embedder of dimension dim. It panics if dim < 1, like make
// does for a negative length: the dimension is configuration, not input.
func New(dim int) *Embedder {
	if dim < 1 {
		panic(fmt.Sprintf("hashembed: dimension %d, want at least 1", dim))
	}
	return &Embedder{dim: dim}
}

// Dim returns the length of the vectors Embed returns.
func (e *Embedder) Dim() int { return e.dim }

// Model names the embedding space, e.g. "hashembed-v1-256"; vectors are only
// comparable with vectors of the same model.
func (e *Embedder) Model() string { return fmt.Sprintf("hashembed-%s-%d", version, e.dim) }

// Embed returns one unit vector per text. A text without any token (empty,
// whitespace, punctuation) gets the same fixed unit vector, spread evenly over
// all dimensions, because vector stores reject zero vectors.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	vectors := make([][]float32, len(texts))
	for i, text := range texts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("embed text %d of %d: %w", i, len(texts), err)
		}
		vectors[i] = e.embed(text)
	}
	return vectors, nil
}

func (e *Embedder) embed(text string) []float32 {
	tokens := tokenize(text)
	if len(tokens) == 0 {
		return e.emptyVector()
	}

	counts := make(map[uint64]int, 2*len(tokens))
	for i, tok := range tokens {
		h := hashString(fnvOffset64, tok)
		counts[h]++
		if i > 0 {
			pair := hashString(hashByte(hashString(fnvOffset64, tokens[i-1]), pairSeparator), tok)
			counts[pair]++
		}
	}

	acc := make([]float64, e.dim)
	for h, tf := range counts {
		weight := 1 + math.Log(float64(tf))
		if h>>63 == 1 {
			weight = -weight
		}
		acc[bucket(h)%uint32(e.dim)] += weight
	}

	var sumSquares float64
	for _, x := range acc {
		sumSquares += x * x
	}
	if sumSquares == 0 {
		// Every feature cancelled another out; rare, but zero is not allowed.
		return e.emptyVector()
	}
	norm := math.Sqrt(sumSquares)
	v := make([]float32, e.dim)
	for i, x := range acc {
		v[i] = float32(x / norm)
	}
	return v
}

func (e *Embedder) emptyVector() []float32 {
	v := make([]float32, e.dim)
	component := float32(1 / math.Sqrt(float64(e.dim)))
	for i := range v {
		v[i] = component
	}
	return v
}

// tokenize splits text into lower-cased tokens; see the package comment.
func tokenize(text string) []string {
	var tokens []string
	var word strings.Builder
	flush := func() {
		if word.Len() > 0 {
			tokens = append(tokens, word.String())
			word.Reset()
		}
	}
	for _, r := range text {
		switch {
		case isIdeographic(r):
			flush()
			tokens = append(tokens, string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			word.WriteRune(unicode.ToLower(r))
		case unicode.IsMark(r) && word.Len() > 0:
			// A combining accent belongs to the letter before it.
			word.WriteRune(r)
		default:
			flush()
		}
	}
	flush()
	return tokens
}

func isIdeographic(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana)
}

// bucket folds h to 32 bits, leaving out the sign bit so that a feature's
// sign and bucket are independent. Folding matters because FNV's low bits
// alone mix poorly.
func bucket(h uint64) uint32 {
	return uint32(h) ^ uint32(h>>32)&0x7fffffff
}

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = hashByte(h, s[i])
	}
	return h
}

func hashByte(h uint64, b byte) uint64 {
	return (h ^ uint64(b)) * fnvPrime64
}
