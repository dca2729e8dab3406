package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// messageOverheadTokens approximates the tokens a chat format adds around
// each message (role markers, separators).
const messageOverheadTokens = 4

// Chat is a chat-completion provider. It is safe for concurrent use; all
// calls share its concurrency cap, budgets and Stats.
type Chat struct {
	model   string
	prices  PriceTable
	client  openai.Client
	runner  *runner
	stats   *recorder
	metrics *callMetrics
}

// NewChat returns a provider for cfg, which must be valid.
func NewChat(cfg Config, opts ...Option) (*Chat, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("llm chat config: %w", err)
	}
	p := policyFor(cfg.MaxConcurrency, cfg.RequestsPerMinute, cfg.TokensPerMinute, cfg.MaxRetries, cfg.Timeout)
	o := buildOptions(p.maxConcurrency, opts)
	stats := newRecorder()
	metrics := cfg.Metrics.bind(MetricsKindChat, cfg.Model)
	return &Chat{
		model:   cfg.Model,
		prices:  cfg.Prices,
		client:  newOpenAIClient(cfg.BaseURL, cfg.APIKey, o.httpClient),
		runner:  newRunner(p, o.clock, stats, metrics),
		stats:   stats,
		metrics: metrics,
	}, nil
}

// Model returns the configured model name.
func (c *Chat) Model() string { return c.model }

// Stats returns a snapshot of what the provider has done so far.
func (c *Chat) Stats() Stats { return c.stats.snapshot() }

// Complete runs one chat completion, retrying transient failures. A failure
// from the provider is an *APIError; cancellation is the context's error.
func (c *Chat) Complete(ctx context.Context, req ChatRequest) (ChatResponse, error) {
	params, err := c.params(req)
	if err != nil {
		return ChatResponse{}, fmt.Errorf("%s: %w", callName(req.Stage), err)
	}
	promptEstimate := estimatePromptTokens(req.Messages)
	var out ChatResponse
	err = c.do(ctx, req, promptEstimate, func(ctx context.Context, opts ...option.RequestOption) (int, error) {
		cc, err := c.client.Chat.Completions.New(ctx, params, opts...)
		if err != nil {
			return 0, err
		}
		if len(cc.Choices) == 0 {
			return 0, &finalError{errors.New("chat completion has no choices")}
		}
		out = ChatResponse{Content: cc.Choices[0].Message.Content, Model: cc.Model}
		if cc.JSON.Usage.Valid() {
			out.Usage = Usage{PromptTokens: int(cc.Usage.PromptTokens), CompletionTokens: int(cc.Usage.CompletionTokens)}
		} else {
			out.Usage = estimatedUsage(promptEstimate, out.Content)
		}
		return out.Usage.Total(), nil
	})
	if err != nil {
		return ChatResponse{}, err
	}
	return c.finish(req.Stage, out), nil
}

// Stream runs one chat completion over server-sent events, calling onDelta
// with each piece of content in order; the returned response holds the
// whole content. Usage comes from the final chunk when the server honours
// stream_options.include_usage and is estimated otherwise.
//
// A failure before the first delta is retried like in Complete. Once
// onDelta has seen content, a failure ends the call, because a retry would
// repeat the content. A stream that ends without a finish reason was cut
// short and is a failure too. An error from onDelta stops the stream and is
// returned wrapped, not as an *APIError.
//
// The stream is decoded chunk by chunk rather than with openai-go's
// ChatCompletionAccumulator, which adds up usage over chunks (servers that
// report running totals on every chunk would be overcounted) and rejects
// chunks whose id changes mid-stream.
func (c *Chat) Stream(ctx context.Context, req ChatRequest, onDelta func(string) error) (ChatResponse, error) {
	params, err := c.params(req)
	if err != nil {
		return ChatResponse{}, fmt.Errorf("%s: %w", callName(req.Stage), err)
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	promptEstimate := estimatePromptTokens(req.Messages)
	var (
		out         ChatResponse
		callbackErr error
	)
	err = c.do(ctx, req, promptEstimate, func(ctx context.Context, opts ...option.RequestOption) (int, error) {
		stream := c.client.Chat.Completions.NewStreaming(ctx, params, opts...)
		defer stream.Close()
		var (
			content  strings.Builder
			usage    Usage
			hasUsage bool
			finished bool
			model    string
		)
		for stream.Next() {
			chunk := stream.Current()
			if model == "" {
				model = chunk.Model
			}
			// Servers that report usage on every chunk report running
			// totals, so the last report is the one that counts.
			if chunk.JSON.Usage.Valid() {
				usage = Usage{PromptTokens: int(chunk.Usage.PromptTokens), CompletionTokens: int(chunk.Usage.CompletionTokens)}
				hasUsage = true
			}
			for _, choice := range chunk.Choices {
				if choice.Index != 0 {
					continue
				}
				finished = finished || choice.FinishReason != ""
				if choice.Delta.Content == "" {
					continue
				}
				content.WriteString(choice.Delta.Content)
				if err := onDelta(choice.Delta.Content); err != nil {
					callbackErr = err
					return 0, &finalError{err}
				}
			}
		}
		err := stream.Err()
		if err == nil && !finished {
			// A connection closed mid-answer ends the event stream
			// without an error; only the missing finish reason tells.
			err = fmt.Errorf("stream ended before a finish reason: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			if content.Len() > 0 {
				return 0, &finalError{fmt.Errorf("stream broke after %d bytes of content: %w", content.Len(), err)}
			}
			return 0, err
		}
		out = ChatResponse{Content: content.String(), Model: model, Usage: usage}
		if !hasUsage {
			out.Usage = estimatedUsage(promptEstimate, out.Content)
		}
		return out.Usage.Total(), nil
	})
	if callbackErr != nil {
		return ChatResponse{}, fmt.Errorf("%s: delta handler: %w", callName(req.Stage), callbackErr)
	}
	if err != nil {
		return ChatResponse{}, err
	}
	return c.finish(req.Stage, out), nil
}

// do runs attempt under the provider's policy and accounts the call.
func (c *Chat) do(ctx context.Context, req ChatRequest, promptEstimate int, attempt attemptFunc) error {
	c.stats.call(req.Stage)
	start := c.runner.clock.Now()
	// Completion tokens count against a token budget too; MaxTokens is the
	// most the call can take, and the settlement corrects the difference.
	err := c.runner.run(ctx, promptEstimate+req.MaxTokens, attempt)
	c.metrics.call(ctx, start, c.runner.clock.Now(), err)
	if err != nil {
		c.stats.failure(req.Stage, isCancellation(ctx, err))
		return fmt.Errorf("%s: %w", callName(req.Stage), err)
	}
	return nil
}

func (c *Chat) finish(stage string, out ChatResponse) ChatResponse {
	if out.Model == "" {
		out.Model = c.model
	}
	c.stats.success(stage, out.Usage, c.prices.costOf(out.Model, c.model, out.Usage))
	c.metrics.usage(out.Usage)
	return out
}

func (c *Chat) params(req ChatRequest) (openai.ChatCompletionNewParams, error) {
	if len(req.Messages) == 0 {
		return openai.ChatCompletionNewParams{}, errors.New("no messages")
	}
	p := openai.ChatCompletionNewParams{
		Model:    c.model,
		Messages: make([]openai.ChatCompletionMessageParamUnion, 0, len(req.Messages)),
	}
	for i, m := range req.Messages {
		switch m.Role {
		case RoleSystem:
			p.Messages = append(p.Messages, openai.SystemMessage(m.Content))
		case RoleUser:
			p.Messages = append(p.Messages, openai.UserMessage(m.Content))
		case RoleAssistant:
			p.Messages = append(p.Messages, openai.AssistantMessage(m.Content))
		default:
			return openai.ChatCompletionNewParams{}, fmt.Errorf("message %d has role %q, want system, user or assistant", i, m.Role)
		}
	}
	if req.Temperature != nil {
		p.Temperature = openai.Float(*req.Temperature)
	}
	if req.MaxTokens < 0 {
		return openai.ChatCompletionNewParams{}, fmt.Errorf("max tokens %d is negative", req.MaxTokens)
	}
	if req.MaxTokens > 0 {
		p.MaxTokens = openai.Int(int64(req.MaxTokens))
	}
	if req.JSON {
		p.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}}
	}
	return p, nil
}

// estimateTokens approximates the tokens of text at four bytes a token,
// the usual ratio for English with OpenAI's tokenizers; it is only used for
// budgets and when a server reports no usage.
func estimateTokens(text string) int { return (len(text) + 3) / 4 }

func estimatePromptTokens(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n += messageOverheadTokens + estimateTokens(m.Content)
	}
	return n
}

func estimatedUsage(promptEstimate int, completion string) Usage {
	return Usage{PromptTokens: promptEstimate, CompletionTokens: estimateTokens(completion), Estimated: true}
}

// isCancellation reports whether err is the end of ctx rather than a
// provider failure.
func isCancellation(ctx context.Context, err error) bool {
	var apiErr *APIError
	return ctx.Err() != nil && !errors.As(err, &apiErr) && errors.Is(err, ctx.Err())
}

// callName names a call in errors: "chat extract", or "chat" without a stage.
func callName(stage string) string {
	if stage == "" {
		return "chat"
	}
	return "chat " + stage
}
