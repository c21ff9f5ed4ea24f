fn main() {
    // Sets the linker flags a Node-API addon needs on each platform.
    napi_build::setup();
}
