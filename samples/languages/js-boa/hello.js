print("Hello, world!");
