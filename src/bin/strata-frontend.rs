//! The Strata BuildKit frontend: the entrypoint of the frontend image.
//! BuildKit starts it with a gRPC connection on stdin/stdout.

fn main() {
    strata::frontend::main()
}
