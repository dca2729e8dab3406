// Command extractor runs kgraph's extractor service as its own process,
// configured from the environment (see the README's configuration table).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kgraph-dev/kgraph/libs/backends"
	"github.com/kgraph-dev/kgraph/libs/boot"
	"github.com/kgraph-dev/kgraph/libs/bus"
	"github.com/kgraph-dev/kgraph/libs/envconf"
	"github.com/kgraph-dev/kgraph/libs/llm"
	"github.com/kgraph-dev/kgraph/libs/natsdocs"
	"github.com/kgraph-dev/kgraph/services/extractor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "extractor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := envconf.New(getenv)
	common := boot.ReadCommon(env)
	cfg := extractor.Config{
		ChunkTokens:         env.Int("KG_CHUNK_TOKENS", 1200),
		OverlapTokens:       env.Int("KG_CHUNK_OVERLAP", 100),
		DocumentConcurrency: env.Int("KG_DOCUMENT_CONCURRENCY", 2),
	}
	llmCfg, useLLM := extractor.ReadLLMConfig(env)
	defaultConcurrency := 8
	if useLLM {
		defaultConcurrency = llmCfg.ChunkConcurrency()
	}
	cfg.ChunkConcurrency = env.Int("KG_CONCURRENCY", defaultConcurrency)
	stores := backends.ReadConfig(env, common.DataDir)
	p, err := boot.Start(ctx, "extractor", common, errors.Join(env.Err(), stores.Validate()), stdout)
	if err != nil {
		return err
	}
	defer p.Close()
	docs, err := natsdocs.Open(ctx, p.Bus.JS, bus.BucketDocuments)
	if err != nil {
		return err
	}
	// Job records tell the extractor which jobs were cancelled, so it stops
	// between chunks.
	jobs, check, closeJobs, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketJobs)
	if err != nil {
		return err
	}
	defer closeJobs()
	p.Ops.AddCheck(check.Name, check.Check)
	var extraction extractor.Extraction // nil: the offline extractor
	if useLLM {
		cache, check, closeCache, err := backends.OpenKV(ctx, stores, p.Bus.JS, bus.BucketLLMCache)
		if err != nil {
			return err
		}
		defer closeCache()
		p.Ops.AddCheck(check.Name, check.Check)
		llmCfg.Chat.Metrics = llm.NewMetrics(p.Ops.Registry)
		if extraction, err = extractor.NewLLMExtraction(llmCfg, cache); err != nil {
			return err
		}
	}
	svc, err := extractor.New(cfg, p.Bus, jobs, docs, extraction)
	if err != nil {
		return err
	}
	p.Log.Info("extraction", "extractor", svc.ExtractorName())
	return p.Run(ctx, svc.Run)
}
