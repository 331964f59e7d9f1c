//! Typed builder for BuildKit LLB (work in progress).
