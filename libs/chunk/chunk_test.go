package chunk

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/tiktoken-go/tokenizer"
)

// helloText is n cl100k_base tokens: "hello" then " hello" n-1 times.
func helloText(n int) string {
	return "hello" + strings.Repeat(" hello", n-1)
}

// helloOffset is the byte offset of token k in helloText.
func helloOffset(k int) int {
	if k == 0 {
		return 0
	}
	return 6*k - 1
}

func newChunker(t testing.TB, cfg Config) *Chunker {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

// requireInvariants checks what Split promises for any input.
func requireInvariants(t testing.TB, text string, cfg Config, chunks []Chunk) {
	t.Helper()
	if strings.TrimSpace(text) == "" {
		require.Empty(t, chunks, "whitespace-only text")
		return
	}
	require.NotEmpty(t, chunks)
	require.Equal(t, 0, chunks[0].Start, "first chunk starts the text")
	require.Equal(t, len(text), chunks[len(chunks)-1].End, "last chunk ends the text")
	validInput := utf8.ValidString(text)
	for i, ch := range chunks {
		require.Equal(t, i, ch.Index)
		require.True(t, 0 <= ch.Start && ch.Start < ch.End && ch.End <= len(text), "chunk %d offsets [%d,%d) in %d bytes", i, ch.Start, ch.End, len(text))
		require.True(t, utf8.ValidString(ch.Text), "chunk %d is not valid UTF-8: %q", i, ch.Text)
		require.Equal(t, strings.ToValidUTF8(text[ch.Start:ch.End], "\uFFFD"), ch.Text, "chunk %d text", i)
		if validInput {
			require.Equal(t, text[ch.Start:ch.End], ch.Text, "chunk %d is cut from the input", i)
		}
		require.True(t, ch.Tokens >= 1 && ch.Tokens <= cfg.MaxTokens, "chunk %d has %d tokens", i, ch.Tokens)
		if i == 0 {
			continue
		}
		prev := chunks[i-1]
		require.GreaterOrEqual(t, ch.Start, prev.Start, "chunk %d starts before chunk %d", i, i-1)
		require.LessOrEqual(t, ch.Start, prev.End, "gap between chunk %d and %d", i-1, i)
		require.Greater(t, ch.End, prev.End, "chunk %d adds nothing after chunk %d", i, i-1)
		if cfg.OverlapTokens == 0 {
			require.Equal(t, prev.End, ch.Start, "chunks %d and %d must be contiguous without overlap", i-1, i)
		}
		overlap := text[ch.Start:prev.End]
		require.True(t, strings.HasSuffix(text[prev.Start:prev.End], overlap), "overlap is chunk %d's tail", i-1)
		require.True(t, strings.HasPrefix(text[ch.Start:ch.End], overlap), "overlap is chunk %d's head", i)
	}
}

// requireCoverage checks that every byte of a text with content is in some
// chunk.
func requireCoverage(t testing.TB, text string, chunks []Chunk) {
	t.Helper()
	if strings.TrimSpace(text) == "" {
		return
	}
	covered := make([]bool, len(text))
	for _, ch := range chunks {
		for i := ch.Start; i < ch.End; i++ {
			covered[i] = true
		}
	}
	for i, ok := range covered {
		require.True(t, ok, "byte %d (%q) is in no chunk", i, text[i])
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "default", cfg: DefaultConfig()},
		{name: "no overlap", cfg: Config{MaxTokens: 1}},
		{name: "largest overlap", cfg: Config{MaxTokens: 10, OverlapTokens: 9}},
		{name: "zero max", cfg: Config{}, wantErr: "max tokens 0: must be positive"},
		{name: "negative max", cfg: Config{MaxTokens: -5}, wantErr: "max tokens -5"},
		{name: "negative overlap", cfg: Config{MaxTokens: 10, OverlapTokens: -1}, wantErr: "overlap tokens -1: must not be negative"},
		{name: "overlap equals max", cfg: Config{MaxTokens: 10, OverlapTokens: 10}, wantErr: "must be less than max tokens 10"},
		{name: "overlap above max", cfg: Config{MaxTokens: 10, OverlapTokens: 11}, wantErr: "must be less than max tokens 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := New(tt.cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorContains(t, newErr, tt.wantErr)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	require.Equal(t, Config{MaxTokens: 1200, OverlapTokens: 100}, DefaultConfig())
}

func TestSplitWindows(t *testing.T) {
	tests := []struct {
		name        string
		tokens      int
		cfg         Config
		wantWindows [][2]int // [first, last) token of each chunk
	}{
		{
			name:        "shorter than a window",
			tokens:      7,
			cfg:         DefaultConfig(),
			wantWindows: [][2]int{{0, 7}},
		},
		{
			name:        "exactly one window",
			tokens:      1200,
			cfg:         DefaultConfig(),
			wantWindows: [][2]int{{0, 1200}},
		},
		{
			name:        "one token over",
			tokens:      1201,
			cfg:         DefaultConfig(),
			wantWindows: [][2]int{{0, 1200}, {1100, 1201}},
		},
		{
			name:        "5000 tokens with defaults",
			tokens:      5000,
			cfg:         DefaultConfig(),
			wantWindows: [][2]int{{0, 1200}, {1100, 2300}, {2200, 3400}, {3300, 4500}, {4400, 5000}},
		},
		{
			name:        "no overlap",
			tokens:      10,
			cfg:         Config{MaxTokens: 4},
			wantWindows: [][2]int{{0, 4}, {4, 8}, {8, 10}},
		},
		{
			name:        "last window ends exactly at the text end",
			tokens:      11,
			cfg:         Config{MaxTokens: 5, OverlapTokens: 2},
			wantWindows: [][2]int{{0, 5}, {3, 8}, {6, 11}},
		},
		{
			name:        "step of one token",
			tokens:      6,
			cfg:         Config{MaxTokens: 3, OverlapTokens: 2},
			wantWindows: [][2]int{{0, 3}, {1, 4}, {2, 5}, {3, 6}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := helloText(tt.tokens)
			c := newChunker(t, tt.cfg)
			require.Equal(t, tt.tokens, c.Count(text), "test text token count")

			chunks := c.Split(text)

			want := make([]Chunk, len(tt.wantWindows))
			for i, w := range tt.wantWindows {
				start, end := helloOffset(w[0]), helloOffset(w[1])
				if w[1] == tt.tokens {
					end = len(text)
				}
				want[i] = Chunk{Index: i, Text: text[start:end], Tokens: w[1] - w[0], Start: start, End: end}
			}
			require.Equal(t, want, chunks)
			requireInvariants(t, text, tt.cfg, chunks)
			requireCoverage(t, text, chunks)
		})
	}
}

// TestSplitOverlapMatchesTokens checks on irregular English text that the
// bytes two neighbouring chunks share are exactly the OverlapTokens tokens
// their windows share, as the tokenizer itself cuts them.
func TestSplitOverlapMatchesTokens(t *testing.T) {
	text := generatedText(rand.New(rand.NewPCG(1, 2)), 3000, false)
	codec, err := tokenizer.Get(tokenizer.Cl100kBase)
	require.NoError(t, err)
	_, pieces, err := codec.Encode(text)
	require.NoError(t, err)

	cfg := Config{MaxTokens: 300, OverlapTokens: 40}
	chunks := newChunker(t, cfg).Split(text)
	require.Greater(t, len(chunks), 3)

	step := cfg.MaxTokens - cfg.OverlapTokens
	for i := 1; i < len(chunks); i++ {
		first := i * step
		wantOverlap := strings.Join(pieces[first:first+cfg.OverlapTokens], "")
		gotOverlap := text[chunks[i].Start:chunks[i-1].End]
		require.Equal(t, wantOverlap, gotOverlap, "overlap of chunks %d and %d", i-1, i)
		require.True(t, strings.HasSuffix(chunks[i-1].Text, gotOverlap))
		require.True(t, strings.HasPrefix(chunks[i].Text, gotOverlap))
		require.Equal(t, strings.Join(pieces[first:min(first+cfg.MaxTokens, len(pieces))], ""), chunks[i].Text)
	}
	requireInvariants(t, text, cfg, chunks)
	requireCoverage(t, text, chunks)
}

func TestSplitScripts(t *testing.T) {
	texts := []struct {
		name string
		text string
	}{
		{name: "ASCII", text: "Marley was dead: to begin with. There is no doubt whatever about that.\nThe register of his burial was signed by the clergyman."},
		{name: "CJK", text: "日本語のテキストを分割します。中文文本也需要正确处理，不能切断字符。한국어 문장도 있습니다."},
		{name: "emoji ZWJ", text: "👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 👩🏽‍💻 coder 🧑‍🤝‍🧑🇯🇵🇫🇷 end"},
		{name: "combining marks", text: "e\u0301e\u0301e\u0301 Zalgo: Z\u0335\u0321\u0317a\u0334\u0327l\u0336g\u0338o\u0337 n\u0303o\u0303 a\u0308\u0301\u0302"},
		{name: "mixed", text: "Scrooge said «Humbug!» — 守銭奴 🤑 naïve café, Ελληνικά και русский текст. אבג عربى\tend\r\n"},
		{name: "surrounding whitespace", text: "\n\n   Hello, world.   \n\n\t"},
		{name: "literal replacement char", text: "before \uFFFD after"},
	}
	configs := []Config{
		{MaxTokens: 1},
		{MaxTokens: 2, OverlapTokens: 1},
		{MaxTokens: 3, OverlapTokens: 1},
		{MaxTokens: 5},
		{MaxTokens: 7, OverlapTokens: 3},
		DefaultConfig(),
	}
	for _, tt := range texts {
		for _, cfg := range configs {
			t.Run(fmt.Sprintf("%s/max%d_overlap%d", tt.name, cfg.MaxTokens, cfg.OverlapTokens), func(t *testing.T) {
				c := newChunker(t, cfg)
				chunks := c.Split(tt.text)
				requireInvariants(t, tt.text, cfg, chunks)
				requireCoverage(t, tt.text, chunks)
				if cfg.OverlapTokens == 0 {
					var sb strings.Builder
					for _, ch := range chunks {
						sb.WriteString(ch.Text)
					}
					require.Equal(t, tt.text, sb.String(), "chunks without overlap concatenate to the text")
				}
			})
		}
	}
}

// TestSplitSnapsInsideCharacters pins the snapping on a known tokenization:
// cl100k_base splits 語 into two tokens (2 bytes + 1 byte), so with one-token
// windows the window holding its first two bytes snaps to nothing and is
// dropped, and the next one grows back to the character's start.
func TestSplitSnapsInsideCharacters(t *testing.T) {
	text := "日本語"
	codec, err := tokenizer.Get(tokenizer.Cl100kBase)
	require.NoError(t, err)
	_, pieces, err := codec.Encode(text)
	require.NoError(t, err)
	require.Equal(t, []string{"日", "本", "\xe8\xaa", "\x9e"}, pieces, "tokenization this test relies on")

	chunks := newChunker(t, Config{MaxTokens: 1}).Split(text)

	require.Equal(t, []Chunk{
		{Index: 0, Text: "日", Tokens: 1, Start: 0, End: 3},
		{Index: 1, Text: "本", Tokens: 1, Start: 3, End: 6},
		{Index: 2, Text: "語", Tokens: 1, Start: 6, End: 9},
	}, chunks)
}

func TestSplitEmpty(t *testing.T) {
	c := newChunker(t, DefaultConfig())
	for _, text := range []string{"", " ", "\n\n\t \r\n", "\u00a0\u2003"} {
		require.Nil(t, c.Split(text), "%q", text)
	}
}

func TestSplitInvalidUTF8(t *testing.T) {
	tests := []struct {
		name string
		text string
		cfg  Config
		want []Chunk
	}{
		{
			name: "run of invalid bytes reads as one replacement",
			text: "abc\xff\xfe\xfddef",
			cfg:  DefaultConfig(),
			want: []Chunk{{Index: 0, Text: "abc\uFFFDdef", Tokens: 3, Start: 0, End: 9}},
		},
		{
			name: "offsets index the original bytes",
			text: "\x80 hello hello",
			cfg:  Config{MaxTokens: 2},
			want: []Chunk{
				{Index: 0, Text: "\uFFFD hello", Tokens: 2, Start: 0, End: 7},
				{Index: 1, Text: " hello", Tokens: 1, Start: 7, End: 13},
			},
		},
		{
			name: "truncated character",
			text: "日本\xe8\xaa",
			cfg:  DefaultConfig(),
			want: []Chunk{{Index: 0, Text: "日本\uFFFD", Tokens: 3, Start: 0, End: 8}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := newChunker(t, tt.cfg).Split(tt.text)
			require.Equal(t, tt.want, chunks)
			requireInvariants(t, tt.text, tt.cfg, chunks)
			requireCoverage(t, tt.text, chunks)
		})
	}
}

func TestCount(t *testing.T) {
	c := newChunker(t, DefaultConfig())
	require.Equal(t, 0, c.Count(""))
	require.Equal(t, 1, c.Count("hello"))
	require.Equal(t, 42, c.Count(helloText(42)))
	require.Equal(t, 4, c.Count("日本語"))
	require.Equal(t, c.Count("a\uFFFDb"), c.Count("a\xff\xfeb"), "invalid bytes count as U+FFFD")
}

func TestChunkTokens(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	tests := []struct {
		name string
		text string
		cfg  Config
		want []int
	}{
		{name: "empty", text: " \n", cfg: DefaultConfig(), want: nil},
		{name: "one window", text: helloText(7), cfg: Config{MaxTokens: 10}, want: []int{7}},
		{name: "overlapping windows", text: helloText(25), cfg: Config{MaxTokens: 10, OverlapTokens: 2}, want: []int{10, 10, 9}},
		{name: "invalid utf8", text: "a\xff\xfeb " + helloText(12), cfg: Config{MaxTokens: 8, OverlapTokens: 1}},
		{name: "generated", text: generatedText(rng, 3000, true), cfg: Config{MaxTokens: 300, OverlapTokens: 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChunker(t, tt.cfg)
			got := c.ChunkTokens(tt.text)
			split := c.Split(tt.text)
			require.Len(t, got, len(split))
			for i, ch := range split {
				require.Equal(t, ch.Tokens, got[i], "chunk %d", i)
			}
			if tt.want != nil || len(split) == 0 {
				require.Equal(t, tt.want, got)
			}
		})
	}
}

// TestSplitFallbackTokens covers the approximate tokens Split falls back to
// if the tokenizer's pieces do not add up to the text.
func TestSplitFallbackTokens(t *testing.T) {
	text := "Ünïcödé 👨‍👩‍👧 text, 日本語 and more words here."
	bounds := approxTokenBounds(text)
	require.Equal(t, 0, bounds[0])
	require.Equal(t, len(text), bounds[len(bounds)-1])
	for i := 1; i < len(bounds); i++ {
		require.Greater(t, bounds[i], bounds[i-1])
		require.True(t, utf8.RuneStart(text[bounds[i-1]]), "bound %d splits a character", i-1)
	}
	cfg := Config{MaxTokens: 3, OverlapTokens: 1}
	chunks := windows(text, bounds, cfg)
	requireInvariants(t, text, cfg, chunks)
	requireCoverage(t, text, chunks)
}

func TestSplitDeterministicAndConcurrent(t *testing.T) {
	text := generatedText(rand.New(rand.NewPCG(7, 7)), 2000, true)
	c := newChunker(t, Config{MaxTokens: 200, OverlapTokens: 20})
	want := c.Split(text)
	require.NotEmpty(t, want)

	const workers = 4
	results := make([][]Chunk, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { results[w] = c.Split(text) })
	}
	wg.Wait()
	for _, got := range results {
		require.Equal(t, want, got)
	}
}

// generatedText returns nWords words of word salad with sentence punctuation
// and line breaks; withUnicode mixes in non-ASCII.
func generatedText(rng *rand.Rand, nWords int, withUnicode bool) string {
	words := strings.Fields(`the of and to a in that it was he for on are as with his they at be this
from have or by one had not but what all were when we there can an your which their said if do will each
about how up out them then she many some so these would other into has more her two like him see time
could no make than first been its who now people my made over did down only way find use may water long
little very after words called just where most know Scrooge Marley London Christmas Cratchit Fezziwig
England Bank ghost spirit counting-house Belle Tiny Tim Fred nephew clerk`)
	nonASCII := []string{"日本語", "中文", "한국어", "👨‍👩‍👧", "café", "naïve", "Ελλάδα", "Москва"}
	var sb strings.Builder
	for i := range nWords {
		switch {
		case i > 0 && rng.IntN(12) == 0:
			sb.WriteString(". ")
		case i > 0 && rng.IntN(60) == 0:
			sb.WriteString("\n\n")
		case i > 0:
			sb.WriteByte(' ')
		}
		if withUnicode && rng.IntN(10) == 0 {
			sb.WriteString(nonASCII[rng.IntN(len(nonASCII))])
			continue
		}
		sb.WriteString(words[rng.IntN(len(words))])
	}
	sb.WriteByte('.')
	return sb.String()
}

func BenchmarkSplit(b *testing.B) {
	text := generatedText(rand.New(rand.NewPCG(42, 42)), 33000, true)
	c := newChunker(b, DefaultConfig())
	tokens := c.Count(text)
	if tokens < 40000 || tokens > 60000 {
		b.Fatalf("generated text has %d tokens, want about 50k", tokens)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if chunks := c.Split(text); len(chunks) == 0 {
			b.Fatal("no chunks")
		}
	}
	b.ReportMetric(float64(tokens), "tokens/op")
}

// segmentedTokens tokenizes text cut at segmentStarts(text, n) piece by piece.
func segmentedTokens(t testing.TB, c *Chunker, text string, n int) (tokens []string, segments int) {
	t.Helper()
	starts := segmentStarts(text, n)
	for i, start := range starts {
		end := len(text)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		_, part, err := c.codec.Encode(text[start:end])
		require.NoError(t, err)
		tokens = append(tokens, part...)
	}
	return tokens, len(starts)
}

func TestSegmentedTokensMatchWholeText(t *testing.T) {
	c := newChunker(t, DefaultConfig())
	rng := rand.New(rand.NewPCG(3, 3))
	// What can stand before a line feed and a letter, where the cuts go.
	breaks := []string{"\n", "\n\n", "\r\n", " \n", "\t\n ", ".\n", "!?\n\n", "'\n", "42\n", "\n \n", " \r\n\r\n", "—\n", "<|endoftext|>\n", "日本\n"}
	var sb strings.Builder
	for i := range 4000 {
		if i > 0 && rng.IntN(6) == 0 {
			sb.WriteString(breaks[rng.IntN(len(breaks))])
		} else if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(generatedText(rng, 1, rng.IntN(3) == 0))
	}
	texts := map[string]string{
		"generated":       generatedText(rand.New(rand.NewPCG(9, 9)), 20000, true),
		"line breaks":     sb.String(),
		"no line feed":    strings.Repeat("word ", 20000),
		"only line feeds": strings.Repeat("\n", 1000) + "a",
	}
	for name, text := range texts {
		t.Run(name, func(t *testing.T) {
			_, want, err := c.codec.Encode(text)
			require.NoError(t, err)
			for _, n := range []int{2, 3, 7, 50} {
				got, segments := segmentedTokens(t, c, text, n)
				require.Equal(t, want, got, "%d segments", segments)
			}
			tokens, err := c.encode(text)
			require.NoError(t, err)
			require.Equal(t, want, tokens)
		})
	}
}

func TestSegmentStartsCutBeforeLettersAfterLineFeeds(t *testing.T) {
	text := "alpha beta\ngamma\n\n12\ndelta epsilon\n zeta\neta"
	starts := segmentStarts(text, 8)
	require.Equal(t, 0, starts[0])
	require.Greater(t, len(starts), 2, "the text has cuts to offer: %v", starts)
	for _, s := range starts[1:] {
		require.Equal(t, byte('\n'), text[s-1], "cut at %d", s)
		require.True(t, isASCIILetter(text[s]), "cut at %d", s)
	}
	require.True(t, slices.IsSorted(starts))
	require.Equal(t, []int{0}, segmentStarts("one line without a break", 4))
}
