// Package chunk splits documents into overlapping windows of tokens, the way
// GraphRAG and nano-graphrag chunk by tokens, but cuts every chunk out of the
// original text at byte offsets instead of decoding tokens back to text. That
// keeps chunks byte-identical to the document and lets a boundary that falls
// inside a multi-byte character (byte-level BPE tokens can hold part of one)
// move to the character's start, so every chunk is valid UTF-8.
package chunk

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// Defaults match GraphRAG's token chunking.
const (
	DefaultMaxTokens     = 1200
	DefaultOverlapTokens = 100
)

// Config sizes the token windows.
type Config struct {
	// MaxTokens is the number of tokens in a full window.
	MaxTokens int
	// OverlapTokens is how many tokens a window shares with the next one.
	OverlapTokens int
}

// DefaultConfig returns windows of DefaultMaxTokens tokens overlapping by
// DefaultOverlapTokens.
func DefaultConfig() Config {
	return Config{MaxTokens: DefaultMaxTokens, OverlapTokens: DefaultOverlapTokens}
}

// Validate reports a configuration that cannot make progress.
func (c Config) Validate() error {
	var errs []error
	if c.MaxTokens <= 0 {
		errs = append(errs, fmt.Errorf("max tokens %d: must be positive", c.MaxTokens))
	}
	if c.OverlapTokens < 0 {
		errs = append(errs, fmt.Errorf("overlap tokens %d: must not be negative", c.OverlapTokens))
	}
	if c.MaxTokens > 0 && c.OverlapTokens >= c.MaxTokens {
		errs = append(errs, fmt.Errorf("overlap tokens %d: must be less than max tokens %d", c.OverlapTokens, c.MaxTokens))
	}
	return errors.Join(errs...)
}

// Chunk is one window of a document.
type Chunk struct {
	// Index numbers the chunks of a document from 0 without gaps.
	Index int
	// Text is the document's bytes [Start, End). For input that is not valid
	// UTF-8, each run of invalid bytes in that range reads as one U+FFFD.
	Text string
	// Tokens is the number of tokens in the window (cl100k_base); snapping
	// the window's edges to character starts does not change it.
	Tokens int
	// Start and End are byte offsets into the text given to Split.
	Start, End int
}

// Chunker splits texts with one Config. It is safe for concurrent use.
type Chunker struct {
	cfg   Config
	codec tokenizer.Codec
}

// New builds a chunker on the cl100k_base encoding, which is embedded in the
// tokenizer module, so no network is needed.
func New(cfg Config) (*Chunker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("chunk config: %w", err)
	}
	codec, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		return nil, fmt.Errorf("load %s encoding: %w", tokenizer.Cl100kBase, err)
	}
	return &Chunker{cfg: cfg, codec: codec}, nil
}

// Config returns the configuration the chunker was built with.
func (c *Chunker) Config() Config { return c.cfg }

// Count returns the number of cl100k_base tokens in text (after invalid UTF-8
// is replaced as Split does).
func (c *Chunker) Count(text string) int {
	valid, _ := sanitize(text)
	if n, err := c.codec.Count(valid); err == nil {
		return n
	}
	return len(approxTokenBounds(valid)) - 1
}

// Split cuts text into windows of at most MaxTokens tokens, each starting
// MaxTokens-OverlapTokens tokens after the previous one. Empty or
// whitespace-only text has no chunks.
//
// The chunks cover the text: the first starts at 0, the last ends at
// len(text), and each starts no later than the previous one ends (exactly
// where it ends when OverlapTokens is 0). Starts never decrease and ends
// strictly increase. A window whose snapped edges would add no byte beyond
// the previous chunk (possible only when one character spans more tokens
// than a window advances) is dropped, so Index stays gap-free.
//
// Invalid UTF-8 does not stop the split: each run of invalid bytes is
// tokenized as U+FFFD (as tiktoken's errors="replace" does), appears as
// U+FFFD in Chunk.Text, and Start/End still index the original bytes.
func (c *Chunker) Split(text string) []Chunk {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	valid, toInput := sanitize(text)
	bounds := c.tokenBounds(valid)
	chunks := windows(valid, bounds, c.cfg)
	if toInput != nil {
		for i := range chunks {
			chunks[i].Start = toInput[chunks[i].Start]
			chunks[i].End = toInput[chunks[i].End]
		}
	}
	return chunks
}

// ChunkTokens returns the token count of each chunk Split would cut from
// text, in order: its length is the number of chunks and its sum the tokens
// an extractor is sent (overlaps count in both chunks that share them). It
// costs a Split minus mapping offsets back to invalid input, so an estimate
// can size a document the way the extractor will.
func (c *Chunker) ChunkTokens(text string) []int {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	valid, _ := sanitize(text)
	chunks := windows(valid, c.tokenBounds(valid), c.cfg)
	counts := make([]int, len(chunks))
	for i, ch := range chunks {
		counts[i] = ch.Tokens
	}
	return counts
}

// tokenBounds returns the byte offset of every token boundary in text:
// bounds[0] is 0, bounds[k] is where token k ends, and the last is len(text).
// The tokenizer yields each token's bytes but not its offset, so offsets are
// accumulated from the token lengths; if they do not add up to the text (or
// tokenizing fails) the chunker falls back to approximate tokens rather than
// cut at wrong offsets.
func (c *Chunker) tokenBounds(text string) []int {
	tokens, err := c.encode(text)
	if err != nil {
		return approxTokenBounds(text)
	}
	bounds := make([]int, len(tokens)+1)
	for i, tok := range tokens {
		bounds[i+1] = bounds[i] + len(tok)
	}
	if bounds[len(tokens)] != len(text) {
		return approxTokenBounds(text)
	}
	return bounds
}

// minSegmentBytes is the least text worth tokenizing on a goroutine of its
// own.
const minSegmentBytes = 32 << 10

// encode returns the tokens of text. A long text is tokenized in segments
// at once, one per processor: tokenizing is the costliest step of chunking
// and a document's chunks are published only after it. The segments end
// where the pre-tokenizer always ends a piece (see segmentStarts), and BPE
// works within pieces, so the tokens are those of tokenizing the whole.
func (c *Chunker) encode(text string) ([]string, error) {
	starts := segmentStarts(text, min(runtime.GOMAXPROCS(0), len(text)/minSegmentBytes))
	if len(starts) <= 1 {
		_, tokens, err := c.codec.Encode(text)
		return tokens, err
	}
	parts := make([][]string, len(starts))
	errs := make([]error, len(starts))
	var wg sync.WaitGroup
	for i, start := range starts {
		end := len(text)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		wg.Go(func() { _, parts[i], errs[i] = c.codec.Encode(text[start:end]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	tokens := make([]string, 0, n)
	for _, p := range parts {
		tokens = append(tokens, p...)
	}
	return tokens, nil
}

// segmentStarts returns the offsets at which to cut text into about n
// segments of similar length, starting with 0. Every cut is just before an
// ASCII letter that follows a line feed: no alternative of the cl100k_base
// pre-tokenizer pattern matches a line feed followed by a letter (letter
// runs take no line feed before them, and line feeds and punctuation runs
// take no letter after them), and none looks behind, so the pieces of the
// whole text are the pieces of its segments. Text without such a place is
// one segment.
func segmentStarts(text string, n int) []int {
	starts := []int{0}
	for k := 1; k < n; k++ {
		from := max(k*len(text)/n, starts[len(starts)-1]+1)
		cut := -1
		for i := max(from, 1); i < len(text); i++ {
			if text[i-1] == '\n' && isASCIILetter(text[i]) {
				cut = i
				break
			}
		}
		if cut < 0 {
			break
		}
		starts = append(starts, cut)
	}
	return starts
}

func isASCIILetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// approxTokensBytes is roughly the average length of a cl100k_base token in
// English text.
const approxTokenBytes = 4

// approxTokenBounds stands in for the tokenizer: tokens of about
// approxTokenBytes bytes that never split a character.
func approxTokenBounds(text string) []int {
	bounds := make([]int, 1, len(text)/approxTokenBytes+2)
	last := 0
	for i := range text {
		if i-last >= approxTokenBytes {
			bounds = append(bounds, i)
			last = i
		}
	}
	if last < len(text) {
		bounds = append(bounds, len(text))
	}
	return bounds
}

// windows cuts valid UTF-8 text into the windows cfg describes over the token
// boundaries in bounds.
func windows(text string, bounds []int, cfg Config) []Chunk {
	nTokens := len(bounds) - 1
	if nTokens <= 0 {
		return nil
	}
	step := cfg.MaxTokens - cfg.OverlapTokens
	chunks := make([]Chunk, 0, (max(nTokens-cfg.OverlapTokens, 1)+step-1)/step)
	prevEnd := 0
	for first := 0; ; first += step {
		last := min(first+cfg.MaxTokens, nTokens)
		// Snapping both edges backwards with one monotone function keeps the
		// windows' order and overlap: a chunk starts no later than the
		// previous one ends because its first token precedes that one's end.
		start := runeStart(text, bounds[first])
		end := runeStart(text, bounds[last])
		if end > prevEnd {
			chunks = append(chunks, Chunk{
				Index:  len(chunks),
				Text:   text[start:end],
				Tokens: last - first,
				Start:  start,
				End:    end,
			})
			prevEnd = end
		}
		if last == nTokens {
			return chunks
		}
	}
}

// runeStart moves offset i of valid UTF-8 text back to the start of the
// character it falls in.
func runeStart(text string, i int) int {
	for i > 0 && i < len(text) && !utf8.RuneStart(text[i]) {
		i--
	}
	return i
}

// sanitize returns text with each run of invalid UTF-8 bytes replaced by
// U+FFFD. When it replaced anything it also returns toInput, which maps every
// byte offset of the result that starts a character (and len) back to the
// offset in text where that character, or the replaced run, starts.
func sanitize(text string) (valid string, toInput []int) {
	if utf8.ValidString(text) {
		return text, nil
	}
	var sb strings.Builder
	sb.Grow(len(text) + 8)
	toInput = make([]int, 0, len(text)+8)
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r != utf8.RuneError || size != 1 {
			sb.WriteString(text[i : i+size])
			for k := range size {
				toInput = append(toInput, i+k)
			}
			i += size
			continue
		}
		runStart := i
		for i < len(text) {
			if r, size := utf8.DecodeRuneInString(text[i:]); r != utf8.RuneError || size != 1 {
				break
			}
			i++
		}
		sb.WriteRune(utf8.RuneError)
		for range utf8.RuneLen(utf8.RuneError) {
			toInput = append(toInput, runStart)
		}
	}
	toInput = append(toInput, len(text))
	return sb.String(), toInput
}
