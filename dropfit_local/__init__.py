"""Docker-free local stack: moto, a local SageMaker with a k-NN engine, Lambda runners."""
