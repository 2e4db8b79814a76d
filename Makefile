# The two commands of the README, plus shortcuts to single test stages.
# Every target sets itself up (virtualenv, container engine, images).
.PHONY: help lab lab-seeds lab-down lab-clean test setup lint sanity unit build integration images molecule lab-test seeds-test

help:
	@echo "make lab        bring up the lab and run site.yml against it"
	@echo "make lab-seeds  the same in the seeds' layout (LiteLLM and LibreChat on the GPU server)"
	@echo "make lab-down   remove the lab's containers, volumes and network"
	@echo "make lab-clean  lab-down, and remove the lab's images too"
	@echo "make test       run every test stage (what CI runs)"
	@echo "make lint|sanity|unit|build|integration|images|molecule|lab-test|seeds-test   one stage"

lab:
	scripts/lab.sh up

lab-seeds:
	PARROTPARK_LAB_LAYOUT=seeds scripts/lab.sh up

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

seeds-test:
	scripts/test.sh seeds
