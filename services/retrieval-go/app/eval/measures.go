package eval

import (
	"math"
	"slices"
)

// NDCG is trec_eval's ndcg_cut.k for one query: gains are the judged
// relevance values (unjudged or non-positive: 0), the discount of rank i
// (from 1) is log2(i+1), and the ideal ranking sorts the judged documents by
// relevance. ranked is the system's ranking, best first.
func NDCG(ranked []string, judged map[string]int, k int) float64 {
	dcg := 0.0
	for i, id := range ranked[:min(k, len(ranked))] {
		if rel := judged[id]; rel > 0 {
			dcg += float64(rel) / math.Log2(float64(i+2))
		}
	}
	var rels []int
	for _, rel := range judged {
		if rel > 0 {
			rels = append(rels, rel)
		}
	}
	slices.SortFunc(rels, func(a, b int) int { return b - a })
	idcg := 0.0
	for i, rel := range rels[:min(k, len(rels))] {
		idcg += float64(rel) / math.Log2(float64(i+2))
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

// Recall is trec_eval's recall.k for one query: the share of relevant
// (relevance > 0) documents found in the first k.
func Recall(ranked []string, judged map[string]int, k int) float64 {
	relevant, found := 0, 0
	for _, rel := range judged {
		if rel > 0 {
			relevant++
		}
	}
	if relevant == 0 {
		return 0
	}
	for _, id := range ranked[:min(k, len(ranked))] {
		if judged[id] > 0 {
			found++
		}
	}
	return float64(found) / float64(relevant)
}
