# The two commands of the README, plus shortcuts to single test stages.
# Every target sets itself up (virtualenv, container engine, images).
.PHONY: help lab lab-gpu-gateway lab-seeds lab-down lab-clean test setup lint sanity unit build integration images molecule lab-test gpu-gateway-test seeds-test

help:
	@echo "make lab              bring up the lab and run site.yml against it (the gateway on the entrance)"
	@echo "make lab-gpu-gateway  the same with the gateway on the GPU server (LiteLLM and LibreChat there)"
	@echo "make lab-down         remove the lab's containers, volumes and network"
	@echo "make lab-clean        lab-down, and remove the lab's images too"
	@echo "make test             run every test stage (what CI runs)"
	@echo "make lint|sanity|unit|build|integration|images|molecule|lab-test|gpu-gateway-test   one stage"

lab:
	scripts/lab.sh up

# The gateway (LiteLLM) and chat (LibreChat) on the GPU server, the entrance in
# neither group; lab-seeds is its earlier name.
lab-gpu-gateway lab-seeds:
	PARROTPARK_LAB_LAYOUT=gpu-gateway scripts/lab.sh up

lab-down:
	scripts/lab.sh down

lab-clean:
	scripts/lab.sh down --images

test:
	scripts/test.sh

setup:
	bash -c '. scripts/lib.sh && pp_setup'

lint sanity unit build integration images molecule:
	scripts/test.sh $@

lab-test:
	scripts/test.sh lab

# seeds-test: the stage's earlier name.
gpu-gateway-test seeds-test:
	scripts/test.sh gpu-gateway
