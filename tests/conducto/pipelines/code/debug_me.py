raise Exception("Debug me!")
